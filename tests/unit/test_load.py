"""chaos.load.http's pure parts: argument checks, the command line, the pod, node choice, and
reading the load program's summary."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError, TargetingError
from pytest_chaos.faults import load
from pytest_chaos.faults.ephemeral import FAKE_NODE_ANNOTATION, NOBODY


def check(url: str = "http://web/", **kwargs: Any) -> load.LoadArgs:
    kwargs.setdefault("namespace", "shop")
    return load.check_load_http(url, **kwargs)


# --- arguments --------------------------------------------------------------------------------


def test_defaults_are_10_at_a_time_for_30s_with_a_2s_timeout_unpaced() -> None:
    args = check()
    assert (args.rate, args.concurrency, args.duration, args.timeout) == (None, 10, 30.0, 2.0)
    assert (args.method, args.headers, args.node, args.image) == ("GET", (), None, None)
    assert args.argv() == [
        "pytest-chaos-load", "-url", "http://web/", "-method", "GET",
        "-concurrency", "10", "-duration", "30000ms", "-timeout", "2000ms",
    ]  # fmt: skip
    assert args.lifetime == 62  # 30s + 2s + the 30s margin
    assert args.describe() == "GET http://web/ as fast as it can (10 at a time) for 30s"


def test_rate_method_and_headers_reach_the_command_line() -> None:
    args = check(
        "https://web.shop:8443/api?x=1",
        rate=50,
        concurrency=4,
        duration="1.5s",
        method="post",
        headers={"Host": "web.example", "X-Test": "a: b"},
        timeout="250ms",
    )
    assert args.argv()[-8:] == [
        "-timeout", "250ms", "-rate", "50", "-header", "Host: web.example", "-header",
        "X-Test: a: b",
    ]  # fmt: skip
    assert args.method == "POST"
    assert args.describe() == ("POST https://web.shop:8443/api?x=1 at 50/s (4 at a time) for 1.5s")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"url": "web/"}, "url='web/' must start with http:// or https://"),
        ({"url": "http:///x"}, "url='http:///x' has no host"),
        ({"url": "http://web:99999/"}, "url='http://web:99999/' is not a valid URL"),
        ({"url": "http://we b/"}, "contains whitespace"),
        ({"url": 3}, "url=3 must be a URL string"),
        ({"rate": 0}, "rate=0 must be a positive number of requests per second"),
        ({"rate": -5}, "rate=-5 must be a positive number"),
        ({"rate": True}, "rate=True must be a positive number"),
        ({"rate": float("inf")}, "rate=inf must be a positive number"),
        ({"rate": "50"}, "rate='50' must be a positive number"),
        ({"concurrency": 0}, "concurrency=0 must be a whole number >= 1"),
        ({"concurrency": 2.5}, "concurrency=2.5 must be a whole number >= 1"),
        ({"concurrency": 5000}, "concurrency=5000 is too many requests in flight"),
        ({"duration": 0}, "duration=0 must be positive"),
        ({"duration": "soon"}, "duration='soon'"),
        ({"timeout": "0s"}, "timeout='0s' must be positive"),
        ({"method": "GE T"}, "method='GE T' is not an HTTP method"),
        ({"headers": ["Host: x"]}, "headers=['Host: x'] is not a mapping"),
        ({"headers": {"Bad Name": "x"}}, "headers: 'Bad Name' is not a valid HTTP header name"),
        ({"headers": {"X": "a\r\nEvil: 1"}}, "headers['X']='a\\r\\nEvil: 1' must be a string"),
        ({"headers": {"X": 1}}, "headers['X']=1 must be a string on one line"),
        ({"namespace": ""}, "namespace='' must be a non-empty string"),
        ({"node": ""}, "node='' must be a non-empty string"),
        ({"image": ""}, "image='' must be a non-empty string"),
        ({"within": "never"}, "within='never'"),
    ],
)
def test_bad_arguments_are_named_with_their_value(kwargs: dict[str, Any], words: str) -> None:
    url = kwargs.pop("url", "http://web/")
    with pytest.raises(ChaosConfigError) as error:
        check(url, **kwargs)
    assert words in str(error.value)


def test_the_verb_and_its_check_take_the_same_arguments() -> None:
    import inspect

    verb = inspect.signature(load.LoadFaults.http).parameters
    checked = inspect.signature(load.check_load_http).parameters
    assert list(verb)[1:] == list(checked)  # all but self
    for name, parameter in checked.items():
        assert verb[name].default == parameter.default, name
        assert verb[name].kind == parameter.kind, name


# --- the pod ----------------------------------------------------------------------------------


def test_the_load_pod_is_pinned_unprivileged_bounded_and_tagged() -> None:
    args = check(rate=5, duration="10s")
    pod = load.load_pod("pytest-chaos-load-abc", "abc", node="real-node-0", image="tb:1", args=args)
    spec = pod["spec"]
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "pytest-chaos",
        "chaos.pytest.dev/fault": "abc",
    }
    assert (spec["nodeName"], spec["restartPolicy"], spec["activeDeadlineSeconds"]) == (
        "real-node-0",
        "Never",
        42,
    )
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["securityContext"]["runAsUser"] == NOBODY
    (container,) = spec["containers"]
    assert container["command"] == args.argv()
    assert container["image"] == "tb:1"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def status(**state: Any) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": "load", "state": state}]}}


def test_container_states_are_read_from_the_pod_status() -> None:
    assert load.terminated(status(terminated={"exitCode": 0, "message": "{}"})) == {
        "exitCode": 0,
        "message": "{}",
    }
    assert load.terminated(status(running={})) is None
    assert load.terminated(None) is None
    assert load.start_failure(status(waiting={"reason": "ErrImageNeverPull", "message": "no"})) == (
        "ErrImageNeverPull: no"
    )
    assert load.start_failure(status(waiting={"reason": "ContainerCreating"})) is None


# --- node choice ------------------------------------------------------------------------------


def node(name: str, *, fake: bool = False, ready: bool = True, cordoned: bool = False) -> Any:
    return {
        "metadata": {
            "name": name,
            "labels": {},
            "annotations": {FAKE_NODE_ANNOTATION: "fake"} if fake else {},
        },
        "spec": {"unschedulable": cordoned},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_only_fake_nodes_is_a_clear_error() -> None:
    with pytest.raises(TargetingError) as error:
        load.choose_node([node("kwok-0", fake=True), node("kwok-1", fake=True)], None, random)
    assert "needs a node that runs containers" in str(error.value)
    assert "every node of this cluster is a kwok fake node (kwok-0, kwok-1)" in str(error.value)


def test_a_named_fake_node_is_refused_and_an_unknown_one_listed() -> None:
    nodes = [node("kwok-0", fake=True), node("real-0")]
    with pytest.raises(ChaosConfigError, match=r"node='kwok-0' is a kwok fake node"):
        load.choose_node(nodes, "kwok-0", random)
    with pytest.raises(TargetingError, match=r"node='nope': no such node"):
        load.choose_node(nodes, "nope", random)
    assert load.choose_node(nodes, "real-0", random)[0] == "real-0"


def test_a_ready_schedulable_real_node_is_chosen() -> None:
    nodes = [
        node("kwok-0", fake=True),
        node("real-0", ready=False),
        node("real-1", cordoned=True),
        node("real-2"),
    ]
    assert load.choose_node(nodes, None, random.Random(1))[0] == "real-2"
    with pytest.raises(TargetingError, match=r"no real node is Ready and schedulable: real-0"):
        load.choose_node(nodes[:2], None, random)


# --- the summary ------------------------------------------------------------------------------

SUMMARY = {
    "url": "http://web/",
    "method": "GET",
    "rate_asked": 50,
    "concurrency": 10,
    "duration_s": 3,
    "elapsed_s": 3.004,
    "requests": 150,
    "ok": 140,
    "status": {"200": 140, "429": 7},
    "errors": {"timeout": 1, "connect": 2, "dns": 0, "other": 0},
    "error_samples": {"connect": "dial tcp 10.0.0.1:80: connect: connection refused"},
    "cancelled": 0,
    "rate": 49.93,
    "latency_ms": {"p50": 1.5, "p95": 4.25, "p99": 12, "max": 2000.5},
    "interrupted": False,
}


def test_a_summary_is_read_from_the_programs_last_json_line() -> None:
    text = "starting\n" + json.dumps({"requests": 0}) + "\n" + json.dumps(SUMMARY) + "\n"
    summary = load.parse_summary(text)
    assert (summary.requests, summary.ok, summary.failed, summary.error_count) == (150, 140, 10, 3)
    assert summary.status == {200: 140, 429: 7}
    assert summary.errors == {"timeout": 1, "connect": 2, "dns": 0, "other": 0}
    assert summary.error_samples["connect"].endswith("connection refused")
    assert (summary.rate, summary.elapsed, summary.interrupted) == (49.93, 3.004, False)
    assert summary.latency_percentiles == {"p50": 0.0015, "p95": 0.00425, "p99": 0.012}
    assert summary.latency_max == 2.0005
    assert summary.raw == SUMMARY
    assert summary.describe() == (
        "150 requests in 3.0s (49.9/s): 140 ok; 200: 140, 429: 7; errors timeout: 1, "
        "connect: 2; p50 1.5ms p95 4.2ms p99 12.0ms"
    )


def test_an_interrupted_load_without_answers_has_no_latencies() -> None:
    partial = {
        **SUMMARY,
        "requests": 0,
        "ok": 0,
        "status": {},
        "errors": {},
        "latency_ms": {},
        "cancelled": 3,
        "interrupted": True,
        "rate": 0,
    }
    summary = load.parse_summary(json.dumps(partial))
    assert summary.latency_percentiles == {}
    assert summary.latency_max is None
    assert summary.errors == {"timeout": 0, "connect": 0, "dns": 0, "other": 0}
    assert summary.describe() == "0 requests in 3.0s (0.0/s): 0 ok; 3 cancelled (interrupted)"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no JSON summary in ''"),
        ("pytest-chaos-load: -url must start with http://", "no JSON summary"),
        ("{not json", "the summary is not JSON"),
        ('{"ok": 1}', "the summary lacks or garbles 'requests'"),
        ('{"requests": "many", "ok": 1, "rate": 1, "elapsed_s": 1}', "lacks or garbles"),
    ],
)
def test_no_summary_says_what_was_there(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load.parse_summary(text)


def test_rbac_finds_the_verb_and_grants_pods_create_and_delete(tmp_path: Any) -> None:
    from pytest_chaos import rbac

    suite = tmp_path / "test_dos.py"
    suite.write_text("def test_dos(chaos):\n    chaos.load.http('http://web/', namespace='x')\n")
    found, _ = rbac.faults_used([tmp_path])
    assert found == {"load.http"}
    pods = [r for r in rbac.rules(found, throwaway=False) if r["resources"] == ["pods"]]
    assert pods == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "delete", "get", "list", "watch"],
        }
    ]
