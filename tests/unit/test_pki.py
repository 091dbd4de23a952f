from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_chaos.cluster import pki


def test_serving_and_admin_certificates_are_signed_by_the_ca(tmp_path: Path) -> None:
    certs = pki.create(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    serving = x509.load_pem_x509_certificate(certs.serving_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(certs.admin_cert.read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for cert in (serving, admin):
        cert.verify_directly_issued_by(ca)

    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    groups = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [g.value for g in groups] == ["system:masters"]
    assert oct(certs.admin_key.stat().st_mode & 0o777) == "0o600"
