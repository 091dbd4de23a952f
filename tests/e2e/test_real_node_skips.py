"""Where a real node cannot run, tests that need one skip with one clear reason, never hang.

These run while the session's real node holds this machine's kubelet ports, so a second cluster
asking for one (``auto``) really is refused, and its tests say exactly why.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.real_node

INNER = """
import pytest

@pytest.mark.real_node
def test_needs_pods_that_run():
    raise AssertionError("must not run without a real node")

def test_fake_nodes_are_enough(kube):
    assert kube.core.list_node().items
"""


@pytest.mark.parametrize(
    ("wish", "reason"),
    [
        (
            "auto",
            "*SKIPPED*this host cannot run a real node: port 10250 (kubelet) is in use: "
            "is another real node running?*",
        ),
        (
            "no",
            "*SKIPPED*the local cluster runs without a real node: set chaos_local_real_node = "
            "auto*",
        ),
    ],
)
def test_a_cluster_without_a_real_node_skips_saying_why(
    pytester: pytest.Pytester, wish: str, reason: str
) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--chaos-cluster=local",
        f"--chaos-local-name=without-real-node-{wish}",
        f"--chaos-local-real-node={wish}",
        "-rs",
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([reason])
