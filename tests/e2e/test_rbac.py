"""The ClusterRole `pytest-chaos rbac` prints is enough for a real run, as a non-admin user."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from pytest_chaos import Kube
from tests.e2e.manifests import namespace_with

SUITE = """
NS = {ns!r}


def test_chaos_as_a_restricted_user(chaos, steady):
    web = steady.deployment("web", namespace=NS)
    web.assert_available(within=30)
    chaos.pods.kill("app=web", namespace=NS)
    with chaos.deployments.scale("web", namespace=NS, replicas=1):
        steady.pods("app=web", namespace=NS).assert_count(1, within=30)
    web.assert_available(within=30)
"""


def user_kubeconfig(kube: Kube, user: str, directory: Path) -> Path:
    """A kubeconfig for user, with a client cert signed by the local cluster's CA."""
    pki = kube.kubeconfig.parent / "pki"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "user.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "user.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["users"][0]["user"] = {
        "client-certificate": str(directory / "user.crt"),
        "client-key": str(directory / "user.key"),
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def restricted(kube: Kube, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with namespace_with(kube, "rbac", {"web": 2}) as namespace:
        yield namespace, user_kubeconfig(kube, f"chaos-ci-{secrets.token_hex(3)}", tmp_path)


def run_suite(pytester: pytest.Pytester, kube: Kube, kubeconfig: Path) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--chaos-cluster=existing",
        f"--chaos-kubeconfig={kubeconfig}",
        f"--chaos-context={kube.context}",
        "test_suite.py",
    )


def test_the_printed_cluster_role_is_all_a_run_needs(
    pytester: pytest.Pytester, kube: Kube, restricted: tuple[str, Path]
) -> None:
    namespace, kubeconfig = restricted
    suite = pytester.makepyfile(test_suite=SUITE.format(ns=namespace))
    user = yaml.safe_load(kubeconfig.read_text())
    name = Path(user["users"][0]["user"]["client-certificate"]).parent.name
    role_name = f"pytest-chaos-{name}"[:60]

    refused = run_suite(pytester, kube, kubeconfig)
    refused.assert_outcomes(errors=1)
    assert "403" in refused.stdout.str() or "Forbidden" in refused.stdout.str()

    printed = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "rbac", str(suite), f"--name={role_name}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "faults used: deployments.scale, pods.kill" in printed.stderr
    role = yaml.safe_load(printed.stdout)
    rbac_api = client.RbacAuthorizationV1Api(kube.api_client)
    subject = (
        x509.load_pem_x509_certificate(
            Path(user["users"][0]["user"]["client-certificate"]).read_bytes()
        )
        .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
        .value
    )
    rbac_api.create_cluster_role(role)
    rbac_api.create_cluster_role_binding(
        {
            "metadata": {"name": role_name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role_name,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": subject}
            ],
        }
    )
    try:
        allowed = run_suite(pytester, kube, kubeconfig)
        allowed.assert_outcomes(passed=1)
        allowed.stdout.fnmatch_lines(["*revert failures: 0, leftovers: 0*"])
    finally:
        rbac_api.delete_cluster_role_binding(role_name)
        rbac_api.delete_cluster_role(role_name)
