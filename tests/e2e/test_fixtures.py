"""The kube and chaos_namespace fixtures, used from a test file as a user writes it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from pytest_chaos import Kube
from pytest_chaos.cluster.processes import free_port
from pytest_chaos.settings import SETTINGS_KEY


def test_kube_fixture_reaches_the_local_cluster(
    pytester: pytest.Pytester, pytestconfig: pytest.Config, kube: Kube
) -> None:
    # The session's own local cluster, whatever its name (--chaos-local-name, its ini key...).
    name = pytestconfig.stash[SETTINGS_KEY].local_name
    pytester.makepyfile(
        f"""
        def test_nodes(kube):
            assert kube.context == {kube.context!r}
            assert len(kube.core.list_node().items) >= 3
        """
    )
    result = pytester.runpytest_subprocess(
        "--chaos-cluster=local", f"--chaos-local-name={name}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_chaos_namespace_is_ready_for_pods_and_removed_afterwards(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makepyfile(
        """
        def test_use(kube, chaos_namespace):
            ns = kube.core.read_namespace(chaos_namespace)
            assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "pytest-chaos"
            assert ns.metadata.labels["chaos.pytest.dev/test"] == "test_use"
            print("NAMESPACE", chaos_namespace)
        """
    )
    result = pytester.runpytest_subprocess("--chaos-cluster=local", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (line,) = [ln for ln in result.outlines if "NAMESPACE" in ln]
    name = line.split("NAMESPACE ")[1].split()[0]
    namespace = kube.core.read_namespace(name)
    assert (
        namespace.metadata.deletion_timestamp is not None or namespace.status.phase == "Terminating"
    )


def test_chaos_namespace_is_removed_even_when_a_revert_in_it_fails(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makepyfile(
        """
        from kubernetes.client import ApiException

        def deployment(name):
            labels = {"app": name}
            return {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": name, "image": "example/web:1"}]},
                    },
                },
            }

        def test_someone_else_scales_it_meanwhile(kube, chaos, chaos_namespace):
            print("NAMESPACE", chaos_namespace)
            kube.apps.create_namespaced_deployment(chaos_namespace, deployment("web"))
            chaos.deployments.scale("web", namespace=chaos_namespace, replicas=1)
            # Another writer: the revert will report drift instead of clobbering it.
            kube.apps.patch_namespaced_deployment(
                "web", chaos_namespace, {"spec": {"replicas": 5}}
            )
        """
    )
    result = pytester.runpytest_subprocess("--chaos-cluster=local", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*scaled to 5 by someone else*"])
    (line,) = [ln for ln in result.outlines if "NAMESPACE chaos-" in ln]
    name = line.split("NAMESPACE ")[1].split()[0]
    namespace = kube.core.read_namespace(name)
    assert (
        namespace.metadata.deletion_timestamp is not None or namespace.status.phase == "Terminating"
    )


def test_the_kubeconfig_of_the_user_is_never_rewritten(kube: Kube) -> None:
    from kubernetes import client

    before = kube.kubeconfig.read_bytes()
    kube.core.list_namespace()
    assert kube.kubeconfig.read_bytes() == before
    # The process-wide default configuration stays the library's own: load_kube_config() (which
    # kubetest used) would have pointed it at our cluster.
    assert client.Configuration.get_default_copy().host != kube.api_client.configuration.host


def test_an_existing_cluster_is_used_as_given_and_left_running(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makepyfile(
        """
        def test_nodes(kube, chaos_cluster):
            assert chaos_cluster.provider == "existing"
            assert kube.server_version().startswith("v1.32.")
        """
    )
    result = pytester.runpytest_subprocess(
        "--chaos-cluster=existing",
        f"--chaos-kubeconfig={kube.kubeconfig}",
        f"--chaos-context={kube.context}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"chaos: cluster=existing ({kube.kubeconfig}, context {kube.context})"]
    )
    assert kube.server_version().startswith("v1.32.")


def test_an_unknown_context_names_the_contexts_that_exist(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    pytester.makepyfile("def test_nodes(kube):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--chaos-cluster=existing",
        f"--chaos-kubeconfig={kube.kubeconfig}",
        "--chaos-context=prod-eu",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*context 'prod-eu' is not in {kube.kubeconfig} (contexts there: {kube.context})*"]
    )


def test_an_unreachable_cluster_is_an_error_naming_the_server(
    pytester: pytest.Pytester, kube: Kube
) -> None:
    dead = pytester.path / "dead-kubeconfig"
    port, _ = free_port()
    text = kube.kubeconfig.read_text()
    dead.write_text(re.sub(r"https://127\.0\.0\.1:\d+", f"https://127.0.0.1:{port}", text))
    pytester.makepyfile("def test_nodes(kube):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--chaos-cluster=existing", f"--chaos-kubeconfig={dead}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cannot reach the API server https://127.0.0.1:{port}*"])


def test_kube_read_returns_the_objects_json_or_none_when_it_does_not_exist(
    kube: Kube, chaos_namespace: str
) -> None:
    namespace = kube.read(kube.core.read_namespace, chaos_namespace)
    assert namespace is not None
    assert namespace["metadata"]["name"] == chaos_namespace  # the API's JSON, camelCase
    assert "creationTimestamp" in namespace["metadata"]
    assert kube.read(kube.core.read_namespaced_pod, "no-such-pod", chaos_namespace) is None


STOPPED_WAIT = """
import functools, sys
from pytest_chaos import Kube
from pytest_chaos.errors import WaitTimeout

def never(pods):
    print("waiting", flush=True)  # the wait has begun: the parent may stop us now
    return False


kube = Kube.from_kubeconfig(sys.argv[1], sys.argv[2])
try:
    kube.wait(
        functools.partial(kube.core.list_namespaced_pod, "default"),
        never,
        within=3,
        what="a pod that never comes",
        label_selector="app=never",
    )
except WaitTimeout as exc:
    print(exc)
"""


def test_a_wait_that_times_out_says_when_the_machine_stood_still_meanwhile(kube: Kube) -> None:
    # A paused CI VM or a stopped process: a timeout then does not mean the cluster was slow.
    with subprocess.Popen(
        [sys.executable, "-c", STOPPED_WAIT, str(kube.kubeconfig), kube.context],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "waiting"
        child.send_signal(signal.SIGSTOP)
        time.sleep(7)  # the pause itself (the fault): there is nothing to watch
        child.send_signal(signal.SIGCONT)
        output, _ = child.communicate(timeout=60)

    assert "timed out after 3s waiting for a pod that never comes" in output
    stood_still = re.search(r"this machine stood still for (\d+)s of that time", output)
    assert stood_still, output
    assert 5 <= int(stood_still.group(1)) <= 8
