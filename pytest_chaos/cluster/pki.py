"""Certificates and keys for the local cluster: one CA, a serving cert, an admin client cert."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

_SERVING_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of the PEM files the control plane and its clients use."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The cluster CA certificate."""
        return self.directory / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        """The kube-apiserver serving certificate."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """The kube-apiserver serving key."""
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        """The admin client certificate (``O=system:masters``)."""
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        """The admin client key."""
        return self.directory / "admin.key"

    @property
    def service_account_key(self) -> Path:
        """Private key signing service-account tokens."""
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        """Public key verifying service-account tokens."""
        return self.directory / "sa.pub"


def create(directory: Path, *, service_ip: str = "10.96.0.1") -> Pki:
    """Write a fresh CA, serving cert, admin cert and service-account key pair into directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=365)

    def new_key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(path, 0o600)

    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-chaos-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    pki = Pki(directory)
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(directory / "ca.key", ca_key)

    serving_key = new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in _SERVING_NAMES]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", service_ip)]
    serving = issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        serving_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        sans,
    )
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    write_key(pki.serving_key, serving_key)

    admin_key = new_key()
    admin = issue(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "pytest-chaos-admin"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            ]
        ),
        admin_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    write_key(pki.admin_key, admin_key)

    sa_key = new_key()
    write_key(pki.service_account_key, sa_key)
    pki.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki
