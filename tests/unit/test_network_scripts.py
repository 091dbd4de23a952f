"""The scripts network faults run in a pod's network namespace, and the NetworkPolicy builder.

The builders are pure and checked line by line. Where this machine allows it (root, ``unshare``,
``iptables``, ``ss``, ``tc``), the scripts also run for real in a private network namespace:
a TCP client really loses its open connection and is refused a new one, the undo removes exactly
the fault's rules and nothing else, and a kernel without netem is recognised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults import network, scripts
from pytest_chaos.faults.scripts import Peer
from pytest_chaos.targeting import parse_label_selector

TAG = "0a1b2c3d4e5f"
CHAIN = "PYTEST-CHAOS-0a1b2c3d4e5f"
BROKER = (Peer("10.96.0.10/32", (("tcp", 4222),)), Peer("10.244.1.7/32", (("tcp", 4222),)))


def test_the_chain_is_named_after_the_tag_and_fits_iptables() -> None:
    assert scripts.chain_name(TAG) == CHAIN
    assert len(scripts.chain_name("f" * 15)) <= scripts.MAX_CHAIN == 28
    for bad in ("", "ABC123", "x; rm -rf /", "0" * 16):
        with pytest.raises(ValueError, match="tag="):
            scripts.chain_name(bad)


def test_a_cut_rejects_both_directions_of_each_peer_and_port() -> None:
    assert scripts.cut_rules(TAG, BROKER) == [
        f"iptables -w -A {CHAIN} -p tcp --tcp-flags RST RST -j RETURN",
        f"iptables -w -A {CHAIN} -d 10.96.0.10/32 -p tcp --dport 4222 -j REJECT "
        "--reject-with tcp-reset",
        f"iptables -w -A {CHAIN} -s 10.96.0.10/32 -p tcp --sport 4222 -j REJECT "
        "--reject-with tcp-reset",
        f"iptables -w -A {CHAIN} -d 10.244.1.7/32 -p tcp --dport 4222 -j REJECT "
        "--reject-with tcp-reset",
        f"iptables -w -A {CHAIN} -s 10.244.1.7/32 -p tcp --sport 4222 -j REJECT "
        "--reject-with tcp-reset",
    ]


def test_a_cut_without_ports_rejects_every_protocol_and_ipv6_uses_ip6tables() -> None:
    rules = scripts.cut_rules(TAG, [Peer("fd00::7"), Peer("10.0.0.0/8", (("udp", 53),))])
    assert rules == [
        f"iptables -w -A {CHAIN} -p tcp --tcp-flags RST RST -j RETURN",
        f"ip6tables -w -A {CHAIN} -p tcp --tcp-flags RST RST -j RETURN",
        f"ip6tables -w -A {CHAIN} -d fd00::7/128 -p tcp -j REJECT --reject-with tcp-reset",
        f"ip6tables -w -A {CHAIN} -d fd00::7/128 -j REJECT",
        f"ip6tables -w -A {CHAIN} -s fd00::7/128 -p tcp -j REJECT --reject-with tcp-reset",
        f"ip6tables -w -A {CHAIN} -s fd00::7/128 -j REJECT",
        f"iptables -w -A {CHAIN} -d 10.0.0.0/8 -p udp --dport 53 -j REJECT",
        f"iptables -w -A {CHAIN} -s 10.0.0.0/8 -p udp --sport 53 -j REJECT",
    ]


def test_the_cut_script_adds_its_rules_jumps_and_closes_connections() -> None:
    script = scripts.cut_script(TAG, BROKER)
    for rule in scripts.cut_rules(TAG, BROKER):
        assert rule in script
    assert f"iptables -w -I OUTPUT 1 -j {CHAIN}" in script
    assert f"iptables -w -I INPUT 1 -j {CHAIN}" in script
    assert "ss -HK -t dst 10.96.0.10 dport = :4222" in script
    assert "ss -HK -t dst 10.244.1.7 dport = :4222" in script
    assert "ip6tables" not in script


def test_the_undo_removes_exactly_the_faults_jumps_and_chain() -> None:
    undo = scripts.iptables_undo_script(TAG)
    commands = [
        line.strip()
        for line in undo.splitlines()
        if line.strip().startswith(("while", "iptables", "ip6tables"))
    ]
    assert commands == [
        f'while iptables -w -D "$hook" -j {CHAIN} 2>/dev/null; do :; done',
        f'iptables -w -F {CHAIN} || fail "cannot flush {CHAIN} (iptables)"',
        f'iptables -w -X {CHAIN} || fail "cannot delete {CHAIN} (iptables)"',
        f'while ip6tables -w -D "$hook" -j {CHAIN} 2>/dev/null; do :; done',
        f'ip6tables -w -F {CHAIN} || fail "cannot flush {CHAIN} (ip6tables)"',
        f'ip6tables -w -X {CHAIN} || fail "cannot delete {CHAIN} (ip6tables)"',
    ]


def test_loss_uses_iptables_statistic_and_spares_loopback() -> None:
    assert scripts.loss_rules(TAG, 30, []) == [
        f"iptables -w -A {CHAIN} -o lo -j RETURN",
        f"iptables -w -A {CHAIN} -m statistic --mode random --probability 0.30000 -j DROP",
    ]
    assert scripts.loss_rules(TAG, 100, [BROKER[0]]) == [
        f"iptables -w -A {CHAIN} -d 10.96.0.10/32 -p tcp --dport 4222 "
        "-m statistic --mode random --probability 1.00000 -j DROP"
    ]
    assert scripts.loss_rules(TAG, 100, [BROKER[0]])[-1] == (
        f"iptables -w -A {CHAIN} -d 10.96.0.10/32 -p tcp --dport 4222 "
        "-m statistic --mode random --probability 1.00000 -j DROP"
    )
    assert "-I INPUT" not in scripts.loss_script(TAG, 30, [])


def test_without_netem_latency_queues_all_but_loopback_to_the_faults_own_delayer() -> None:
    queue = scripts.latency_queue(TAG)
    assert queue == 0x0A1B
    assert scripts.latency_rules(TAG) == [
        f"iptables -w -t mangle -A {CHAIN} -o lo -j RETURN",
        f"iptables -w -t mangle -A {CHAIN} -j NFQUEUE --queue-num {queue} --queue-bypass",
    ]
    inject = scripts.latency_script(TAG, 300, 20.5)
    assert inject.rstrip().endswith(
        f"exec pytest-chaos-delay serve -tag {TAG} -queue {queue} -delay 300000us -jitter 20500us"
    )
    ready = scripts.latency_ready_script(TAG)
    assert ready.index(f"pytest-chaos-delay ready -tag {TAG}") < ready.index("NFQUEUE")
    assert "already has a latency fault" in ready
    undo = scripts.latency_undo_script(TAG)
    assert undo.index(f"-D OUTPUT -j {CHAIN}") < undo.index(f"pytest-chaos-delay stop -tag {TAG}")


def test_latency_uses_netem_with_the_faults_own_handle() -> None:
    handle = scripts.qdisc_handle(TAG)
    assert handle == "a1c:"
    script = scripts.latency_script(TAG, 200, 20)
    assert f'tc qdisc add dev "$dev" root handle {handle} netem delay 200ms 20ms' in script
    assert scripts.NETEM_UNAVAILABLE in script
    assert f'grep -q "netem {handle} "' in scripts.latency_undo_script(TAG)


def test_stress_undo_never_matches_its_own_command_line() -> None:
    undo = scripts.stress_undo_script(TAG)
    assert scripts.stress_marker(TAG) not in undo
    assert f"pgrep -f 'pytest-chaos-stres[s]-{TAG}'" in undo
    assert scripts.stress_command(TAG, [["stress-ng", "--cpu", "1"]])[-1] == (
        f"pytest-chaos-stress-{TAG}"
    )


# --- NetworkPolicy -------------------------------------------------------------------------


def policy(direction: str, peers: object, peer_ips: tuple[str, ...] = ()) -> dict[str, Any]:
    requirements, spec, checked = network.check_partition(
        "app=orders", namespace="shop", peers=peers, direction=direction
    )
    return network.partition_policy(
        "pytest-chaos-partition-x",
        TAG,
        requirements,
        checked,
        spec,
        namespace="shop",
        peer_ips=peer_ips,
    )


@pytest.mark.parametrize(
    ("direction", "types"),
    [("ingress", ["Ingress"]), ("egress", ["Egress"]), ("both", ["Ingress", "Egress"])],
)
def test_a_partition_from_everything_denies_all_in_its_directions(
    direction: str, types: list[str]
) -> None:
    made = policy(direction, None)
    assert made["spec"] == {
        "podSelector": {
            "matchExpressions": [{"key": "app", "operator": "In", "values": ["orders"]}]
        },
        "policyTypes": types,
    }
    assert made["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "pytest-chaos",
        "chaos.pytest.dev/fault": TAG,
    }


def test_a_partition_from_peers_allows_everything_but_them() -> None:
    made = policy("egress", "app=broker,tier!=cache", ("10.244.1.7",))
    assert "ingress" not in made["spec"]
    assert made["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "NotIn",
                                "values": ["shop"],
                            }
                        ]
                    }
                },
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "app", "operator": "NotIn", "values": ["broker"]}
                        ]
                    },
                },
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
                    "podSelector": {
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache"]}]
                    },
                },
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.1.7/32"]}},
                {"ipBlock": {"cidr": "::/0"}},
            ]
        }
    ]


def test_a_partition_from_another_namespace_names_it() -> None:
    made = policy("ingress", {"namespace": "infra"})
    allowed = made["spec"]["ingress"][0]["from"]
    assert allowed[0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["infra"]
    assert [e for e in allowed if "podSelector" in e] == []  # the whole namespace is the peer


def test_negated_selectors_cover_exactly_the_pods_the_peers_selector_misses() -> None:
    requirements = parse_label_selector("app=broker,tier in (a, b),!canary,zone")
    negations = network.negated_selectors(requirements)
    samples = [
        {"app": "broker", "tier": "a", "zone": "1"},
        {"app": "broker", "tier": "c", "zone": "1"},
        {"app": "web", "tier": "a", "zone": "1"},
        {"app": "broker", "tier": "a", "zone": "1", "canary": "y"},
        {"app": "broker", "tier": "b"},
        {},
    ]
    for labels in samples:
        is_peer = network.policy_selects(network.label_selector(requirements), labels)
        allowed = any(network.policy_selects(n, labels) for n in negations)
        assert allowed == (not is_peer), labels


@pytest.mark.parametrize(
    ("peers", "message"),
    [
        (42, "must be None"),
        ({"pods": "app=x"}, "must be a label selector, or a dict"),
        ("app==", "peers="),
        ({"namespace": ""}, "peers\\['namespace'\\]"),
    ],
)
def test_bad_peers_are_refused(peers: object, message: str) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        network.check_partition("app=x", namespace="shop", peers=peers)


def test_bad_cut_arguments_are_refused_before_anything() -> None:
    with pytest.raises(ChaosConfigError, match="to='Broker!'"):
        network.check_cut("app=a", namespace="shop", to="Broker!")
    with pytest.raises(ChaosConfigError, match="port=70000"):
        network.check_cut("app=a", namespace="shop", to="broker", port=70000)
    with pytest.raises(ChaosConfigError, match="port='client' is a port name"):
        network.check_cut("app=a", namespace="shop", to="10.0.0.7", port="client")
    with pytest.raises(ChaosConfigError, match="mode="):
        network.check_cut("app=a", namespace="shop", to="broker", mode="some")
    with pytest.raises(ChaosConfigError, match="direction='sideways'"):
        network.check_partition("app=a", namespace="shop", direction="sideways")
    with pytest.raises(ChaosConfigError, match="percent=0 would drop nothing"):
        network.check_loss_percent(0)
    with pytest.raises(ChaosConfigError, match="delay="):
        network.check_delay("0s", 0)
    assert network.check_delay("250ms", "10ms") == (250.0, 10.0)


# --- for real, in a private network namespace ------------------------------------------------

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0
    or not all(shutil.which(tool) for tool in ("unshare", "iptables", "ss", "tc", "ip")),
    reason="running the scripts needs root, unshare, iptables, ss, tc and ip",
)

HARNESS = """
import json, os, socket, subprocess, sys

subprocess.run(["mount", "-t", "sysfs", "none", "/sys"], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"], check=True)
subprocess.run(["ip", "route", "add", "default", "dev", "lo"], check=True)
REPORT = os.path.join(sys.argv[1], "report")
results = {}

def run(name, script):
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTEST_CHAOS_REPORT": REPORT})
    report = open(REPORT).read().strip() if os.path.exists(REPORT) else ""
    if os.path.exists(REPORT):
        os.remove(REPORT)
    results[name] = {"rc": done.returncode, "report": report, "err": done.stderr}

def rules():
    return subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout

def connect(timeout):
    return socket.create_connection(("10.99.0.1", 4222), timeout=timeout) and "connected"

def attempt(fn):
    try:
        return fn()
    except OSError as exc:
        return type(exc).__name__

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("10.99.0.1", 4222))
server.listen(5)
subprocess.run(["iptables", "-N", "SOMEONE-ELSES"], check=True)
subprocess.run(["iptables", "-A", "OUTPUT", "-d", "10.99.0.9", "-j", "SOMEONE-ELSES"], check=True)
before = rules()
client = socket.create_connection(("10.99.0.1", 4222))
server.accept()
{body}
print(json.dumps(results))
"""

CUT_BODY = """
run("cut", CUT)
results["established"] = attempt(lambda: (client.send(b"x"), client.recv(1)) and "open")
results["new"] = attempt(lambda: connect(3))
results["during"] = rules()
run("undo", UNDO)
run("undo again", UNDO)
results["after_equal_before"] = rules() == before
results["after"] = attempt(lambda: connect(3))
"""

LOSS_BODY = """
run("loss", LOSS)
results["new"] = attempt(lambda: connect(2))
run("undo", UNDO)
results["after_equal_before"] = rules() == before
results["after"] = attempt(lambda: connect(3))
"""

LATENCY_BODY = """
run("latency", LATENCY)
run("undo", LATENCY_UNDO)
"""


def in_netns(tmp_path: Path, body: str, **script_texts: str) -> dict[str, Any]:
    program = HARNESS.replace("{body}", textwrap.dedent(body))
    constants = "".join(f"{name} = {text!r}\n" for name, text in script_texts.items())
    path = tmp_path / "harness.py"
    path.write_text(constants + program)
    done = subprocess.run(
        ["unshare", "--net", "--mount", sys.executable, str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@needs_netns
def test_a_cut_closes_the_open_connection_refuses_new_ones_and_undo_restores(
    tmp_path: Path,
) -> None:
    peers = [Peer("10.99.0.1/32", (("tcp", 4222),))]
    result = in_netns(
        tmp_path,
        CUT_BODY,
        CUT=scripts.cut_script(TAG, peers),
        UNDO=scripts.iptables_undo_script(TAG),
    )
    assert result["cut"]["rc"] == 0, result["cut"]
    assert result["cut"]["report"] == f"cut {CHAIN}: 3 rules; closed=1 left=0"
    assert result["established"] == "ConnectionAbortedError"  # ss -K destroyed it
    assert result["new"] == "ConnectionRefusedError"  # a reset, not a hang
    assert f"-A OUTPUT -j {CHAIN}" in result["during"]
    assert f"-A INPUT -j {CHAIN}" in result["during"]
    assert result["undo"] == {"rc": 0, "report": f"removed {CHAIN}", "err": ""}
    assert result["undo again"]["report"] == f"{CHAIN} was already gone"
    assert result["after_equal_before"]  # someone else's chain and jump are untouched
    assert result["after"] == "connected"


@needs_netns
def test_full_loss_drops_new_connections_and_undo_restores(tmp_path: Path) -> None:
    peers = [Peer("10.99.0.1/32", (("tcp", 4222),))]
    result = in_netns(
        tmp_path,
        LOSS_BODY,
        LOSS=scripts.loss_script(TAG, 100, peers),
        UNDO=scripts.iptables_undo_script(TAG),
    )
    assert result["loss"]["rc"] == 0, result["loss"]
    assert result["new"] in ("TimeoutError", "timeout")
    assert result["undo"]["rc"] == 0
    assert result["after_equal_before"]
    assert result["after"] == "connected"


LATENCY_HARNESS = """
import json, os, socket, subprocess, sys, time

work = sys.argv[1]
env = {**os.environ, "PYTEST_CHAOS_REPORT": os.path.join(work, "report"),
       "PATH": work + ":" + os.environ["PATH"]}
sh = lambda *a, **k: subprocess.run(list(a), check=True, **k)
sh("mount", "-t", "sysfs", "none", "/sys")
sh("ip", "link", "set", "lo", "up")
# A peer in its own network namespace, behind a veth: the "pod" (this namespace) talks to it.
peer = subprocess.Popen(["unshare", "--net", "sleep", "120"])
time.sleep(0.2)
pid = str(peer.pid)
inpeer = ["nsenter", "-t", pid, "-n"]
sh("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "p0")
sh("ip", "link", "set", "p0", "netns", pid)
sh("ip", "addr", "add", "10.98.0.1/24", "dev", "eth0")
sh("ip", "link", "set", "eth0", "up")
sh("ip", "route", "add", "default", "via", "10.98.0.2")
sh(*inpeer, "ip", "addr", "add", "10.98.0.2/24", "dev", "p0")
sh(*inpeer, "ip", "link", "set", "p0", "up")
sh(*inpeer, "ip", "link", "set", "lo", "up")
echo = subprocess.Popen([*inpeer, sys.executable, "-c",
    "import socket\\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\\n"
    "s.bind(('10.98.0.2', 7))\\nwhile True:\\n d,a=s.recvfrom(99); s.sendto(d,a)"])

def rtt_ms():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    took = []
    for i in range(5):
        t = time.monotonic()
        u.sendto(b"x", ("10.98.0.2", 7))
        u.recvfrom(9)
        took.append((time.monotonic() - t) * 1000)
    return sorted(took)[2]

def report():
    path = env["PYTEST_CHAOS_REPORT"]
    text = open(path).read().strip() if os.path.exists(path) else ""
    if os.path.exists(path):
        os.remove(path)
    return text

def run(script):
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
    return {"rc": done.returncode, "report": report(), "err": done.stderr}

for _ in range(50):  # until the peer answers
    try:
        before = rtt_ms()
        break
    except OSError:
        time.sleep(0.1)
results = {"before": before}
rules = lambda: subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
inject = subprocess.Popen(["sh", "-c", LATENCY], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env)
time.sleep(0.3)
if inject.poll() is None:  # the delayer runs: no netem here
    results["mechanism"] = "nfqueue"
    results["ready"] = run(READY)
else:
    results["mechanism"] = "netem"
    results["ready"] = {"rc": inject.returncode, "report": report(), "err": ""}
results["during"] = rtt_ms()
results["during_rules"] = rules()
results["undo"] = run(UNDO)
inject.wait(timeout=30)
results["delayer"] = {"rc": inject.returncode, "report": report(), "out": inject.stdout.read()}
results["undo_again"] = run(UNDO)
results["after"] = rtt_ms()
results["after_rules"] = rules()
echo.kill()
peer.kill()
print(json.dumps(results))
"""


needs_go = pytest.mark.skipif(
    shutil.which("go") is None and not Path("/usr/local/go/bin/go").is_file(),
    reason="building the NFQUEUE delayer needs Go",
)


@needs_netns
@needs_go
def test_latency_delays_what_the_pod_sends_and_undo_removes_it_and_stops_the_delayer(
    tmp_path: Path,
) -> None:
    """Where the kernel has no netem (this one), the NFQUEUE delayer holds each packet."""
    from pytest_chaos.cluster import images

    images.go_build(images.sources_dir() / "delay", tmp_path / scripts.DELAY_COMMAND)
    constants = "".join(
        f"{name} = {text!r}\n"
        for name, text in {
            "LATENCY": scripts.latency_script(TAG, 200),
            "READY": scripts.latency_ready_script(TAG),
            "UNDO": scripts.latency_undo_script(TAG),
        }.items()
    )
    harness = tmp_path / "harness.py"
    harness.write_text(constants + LATENCY_HARNESS)
    done = subprocess.run(
        ["unshare", "--net", "--mount", sys.executable, str(harness), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ready"]["rc"] == 0, result["ready"]
    assert result["before"] < 20, result
    assert 195 <= result["during"] < 400, result  # only the request is delayed, by 200ms
    assert result["after"] < 20, result
    assert result["undo"]["rc"] == 0, result["undo"]
    assert result["undo_again"] == {"rc": 0, "report": f"latency {TAG} was already gone", "err": ""}
    assert CHAIN not in result["after_rules"], result["after_rules"]  # chain and jump gone
    assert "NFQUEUE" not in result["after_rules"], result["after_rules"]
    if result["mechanism"] == "nfqueue":
        queue = scripts.latency_queue(TAG)
        assert result["ready"]["report"].startswith(f"latency nfqueue {queue} ready: delay 200ms")
        assert f"-A {CHAIN} -j NFQUEUE --queue-num {queue} --queue-bypass" in result["during_rules"]
        assert f"-A {CHAIN} -o lo -j RETURN" in result["during_rules"]
        assert result["delayer"]["rc"] == 0, result["delayer"]
        # Its report went to the shared report file before the undo's; its output says it too.
        assert f"latency nfqueue {queue} stopped: " in result["delayer"]["out"]
        assert f"{CHAIN} (iptables)" in result["undo"]["report"]
        assert scripts.NETEM_UNAVAILABLE in result["delayer"]["out"]


needs_stress_ng = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("stress-ng", "pgrep")),
    reason="needs stress-ng and pgrep",
)


@needs_stress_ng
def test_stress_undo_stops_the_whole_marked_process_tree(tmp_path: Path, holder_dir: Path) -> None:
    tag = "5eed5eed5eed"
    commands = [
        scripts.stress_ng_args(cpu_workers=1, cpu_load=5, timeout_seconds=60),
        scripts.hold_args(memory_bytes=4 * 2**20, timeout_seconds=60),
    ]
    env = {
        **os.environ,
        "PYTEST_CHAOS_REPORT": str(tmp_path / "stress-report"),
        "PATH": f"{holder_dir}:{os.environ['PATH']}",
    }
    stress = subprocess.Popen(
        scripts.stress_command(tag, commands),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        marker = scripts.stress_marker(tag)
        workers = _wait_for_workers(stress.pid)
        assert len(workers) >= 3, workers  # the holder, stress-ng and its renamed workers
        undo_env = {**os.environ, "PYTEST_CHAOS_REPORT": str(tmp_path / "undo-report")}
        undone = subprocess.run(
            ["sh", "-c", scripts.stress_undo_script(tag)],
            env=undo_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert undone.returncode == 0, undone.stderr
        assert (tmp_path / "undo-report").read_text().startswith(f"stress {tag}: stopped")
        output, _ = stress.communicate(timeout=10)
        assert f"pytest-chaos: stress {tag}: stress-ng --cpu 1" in output
        assert f"; pytest-chaos-hold {4 * 2**20} 60" in output
        assert "pytest-chaos-hold: stopped, memory released" in output
        assert (tmp_path / "stress-report").read_text().strip() == f"stress {tag} ended (exit 0)"
        assert not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in workers)
        assert subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1
        again = subprocess.run(
            ["sh", "-c", scripts.stress_undo_script(tag)],
            env=undo_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert again.returncode == 0
        assert (tmp_path / "undo-report").read_text().strip() == f"stress {tag}: nothing running"
    finally:
        if stress.poll() is None:
            stress.kill()
            stress.communicate()


def _children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


def _state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        pass
    return "gone"


def _wait_for_workers(shell: int) -> list[int]:
    """The shell's descendants once stress-ng has started its workers (deadline 10 s)."""
    import time

    deadline = time.monotonic() + 10
    while True:
        tree, todo = [], [shell]
        while todo:
            kids = _children(todo.pop())
            tree += kids
            todo += kids
        if len(tree) >= 3 or time.monotonic() > deadline:
            return tree
        time.sleep(0.05)


@needs_go
def test_the_delayers_go_unit_tests_and_vet_pass() -> None:
    """Packet ids parsed from the kernel's messages; delay, jitter bound and order kept."""
    from pytest_chaos.cluster import images

    go = images._go()
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    for command in ([go, "vet", "./..."], [go, "test", "-count=1", "./..."]):
        result = subprocess.run(
            command,
            cwd=images.sources_dir() / "delay",
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
