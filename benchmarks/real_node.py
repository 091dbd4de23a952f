"""Real-node timings: node start, pod kill to replacement serving, HTTP monitor detection lag.

(a) ``pytest-chaos cluster up --real-node --name rnbench`` (warm: binaries and images cached),
    timed end to end, then the real node's own start read from its logs: host prepared
    (``realnode/host.json``) -> kubelet started -> node registered -> node Ready. One real node
    per machine: when one already runs (a bridge ``pcbr0``, a kubelet port in use, or a local
    cluster with a kubelet), ``up`` is not run; its start is read from that node's logs instead
    and (b) and (c) run on that cluster, in namespaces of their own.
(b) Pod kill to a replacement serving: a 1-replica demo Deployment behind a Service; the pod is
    deleted (its own grace period) and a client polls the Service every 10 ms with new
    connections until the *new* pod answers (each pod answers with its own name). Also reported:
    the gap in which requests failed.
(c) HTTP monitor detection lag: a monitor samples the Service every 100 ms while the host blocks
    the pod (an iptables REJECT in the host's OUTPUT chain, tagged ``pytest-chaos-bench``) for 1 s
    and unblocks it. Reported outage start minus the moment the rule was in place, and reported
    end minus the moment it was gone: the goal is both within one sampling interval.
(d) Memory past the limit: per round a fresh 1-replica demo Deployment with a 64Mi limit (a
    fresh one, so that the kubelet's restart back-off never applies); ``chaos.stress.pods(
    memory="limit")`` from call to return, then to the OOMKilled restart that
    ``steady.pods(...).assert_restarted("OOMKilled")`` reports, then to the pod Ready again.
(e) Cluster DNS: the time to answer a Service's name, a name that is no Service (NXDOMAIN) and a
    name forwarded to the host's resolver, asked from this host of the server the pods use
    (``pytest-chaos-dns``; pods reach it through kube-proxy); and from a Service's creation to
    its first answer (asked every 5 ms).

Needs root and a host that can run the real node. Usage:
    python benchmarks/real_node.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.output import publish
from pytest_chaos.cluster import cluster_dns, dnsquery, realnode
from pytest_chaos.cluster.local import context_name, state_root
from pytest_chaos.faults import FaultContext
from pytest_chaos.faults.stress import StressFaults
from pytest_chaos.kube import Kube
from pytest_chaos.ledger import Ledger, Owner, new_run_id
from pytest_chaos.report.timeline import Timeline
from pytest_chaos.safety import Safety
from pytest_chaos.settings import Settings
from pytest_chaos.steady.http import HttpProbe
from pytest_chaos.steady.objects import PodsProbe

BENCH_CLUSTER = "rnbench"
DEMO = "localhost/pytest-chaos/demo:1.0"
TAG = "pytest-chaos-bench"


def summary(values: list[float]) -> dict[str, float]:
    """min/median/max of the finite values (a NaN: the event did not happen that round)."""
    values = [v for v in values if v == v]
    if not values:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan"), "n": 0}
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


# --- (a) node start ----------------------------------------------------------------------------


def running_real_node() -> str | None:
    """Why this machine already runs a real node (None: it does not)."""
    if Path(f"/sys/class/net/{realnode.BRIDGE}").exists():
        return f"bridge {realnode.BRIDGE} exists"
    for state in sorted(state_root().glob("*/cluster.json")):
        data = json.loads(state.read_text())
        for record in data.get("processes", []):
            if record.get("component") == "kubelet" and Path(f"/proc/{record['pid']}").exists():
                return f"local cluster {data['name']!r} runs a real node"
    busy = [m for m in realnode.missing_requirements() if "port" in m]
    return "; ".join(busy) or None


def real_node_cluster() -> Path | None:
    """The state directory of the local cluster whose real node runs."""
    for state in sorted(state_root().glob("*/cluster.json")):
        data = json.loads(state.read_text())
        if any(r.get("component") == "kubelet" for r in data.get("processes", [])):
            return state.parent
    return None


def _kubelet_stamp(line: str) -> float:
    """Epoch seconds of a klog line (``I1121 16:09:53.530528 ...``), this year, UTC."""
    match = re.match(r"^[IWEF](\d\d)(\d\d) (\d\d:\d\d:\d\d\.\d+)", line)
    if not match:
        raise ValueError(line)
    month, day, clock = match.groups()
    year = datetime.now(UTC).year
    stamp = datetime.strptime(f"{year}-{month}-{day} {clock}", "%Y-%m-%d %H:%M:%S.%f")
    return stamp.replace(tzinfo=UTC).timestamp()


def node_start_from_logs(state_dir: Path) -> dict[str, float]:
    """Seconds between the steps of the last real-node start, read from its files and logs."""
    base = state_dir / "realnode"
    prepared = (base / "host.json").stat().st_mtime
    lines = (base / "logs" / "kubelet.log").read_text().splitlines()
    # A restarted node appends to the log: take the last start.
    starts = [i for i, line in enumerate(lines) if "FLAG: --address=" in line]
    lines = lines[starts[-1] :] if starts else lines
    kubelet = _kubelet_stamp(lines[0])
    registered = next(_kubelet_stamp(x) for x in lines if "Successfully registered node" in x)
    ready = next(_kubelet_stamp(x) for x in lines if "just became ready" in x)
    return {
        "host_prepared_to_kubelet_start": round(kubelet - prepared, 3),
        "kubelet_start_to_registered": round(registered - kubelet, 3),
        "registered_to_ready": round(ready - registered, 3),
        "host_prepared_to_ready": round(ready - prepared, 3),
    }


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "cluster", *args, "--name", BENCH_CLUSTER],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- workloads --------------------------------------------------------------------------------


def demo(name: str, memory_limit: str | None = None) -> dict[str, Any]:
    """One demo pod on the real node that answers with its own name (``Release: <pod>``)."""
    labels = {"app": name}
    container: dict[str, Any] = {
        "name": "demo",
        "image": DEMO,
        "imagePullPolicy": "Never",
        "env": [{"name": "RELEASE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    if memory_limit:
        container["resources"] = {"limits": {"memory": memory_limit}}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **realnode.ON_REAL_NODE,
                    "containers": [container],
                },
            },
        },
    }


@contextmanager
def workload(kube: Kube) -> Iterator[tuple[str, str]]:
    """A namespace with the demo Deployment ``web`` and its Service: (namespace, ClusterIP)."""
    namespace = f"rnbench-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": namespace}})
    try:
        kube.wait(
            functools.partial(kube.core.list_namespaced_service_account, namespace),
            lambda found: any(a.metadata.name == "default" for a in found),
            within=60,
            what="the default service account",
        )
        body = {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        ip = str(kube.core.create_namespaced_service(namespace, body).spec.cluster_ip)
        kube.apps.create_namespaced_deployment(namespace, demo("web"))
        yield namespace, ip
    finally:
        kube.core.delete_namespace(namespace)


def current_pod(kube: Kube, namespace: str) -> Any:
    """The Ready, not terminating pod of ``web`` (waits for it)."""
    from pytest_chaos.steady.diagnosis import pod_ready

    pods = kube.wait(
        functools.partial(kube.core.list_namespaced_pod, namespace),
        lambda found: sum(map(pod_ready, found)) == 1,
        within=60,
        what="one ready pod",
        label_selector="app=web",
    )
    return next(p for p in pods if pod_ready(p))


def answered_by(client: httpx.Client, url: str) -> str | None:
    """The pod that answered (from ``Release: <pod>``), None when the request failed."""
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return None
    match = re.search(r"Release: (\S+)", response.text)
    return match.group(1) if response.status_code == 200 and match else None


# --- (b) pod kill to replacement serving ------------------------------------------------------


def kill_to_serving(kube: Kube, namespace: str, url: str, client: httpx.Client) -> dict[str, float]:
    pod = current_pod(kube, namespace)
    old = pod.metadata.name
    deadline = time.monotonic() + 30
    while answered_by(client, url) != old:  # the Service routes to it
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Service does not answer from {old}")
    started = time.monotonic()
    kube.core.delete_namespaced_pod(old, namespace)
    first_failure = last_failure = None
    while True:
        now = time.monotonic()
        who = answered_by(client, url)
        if who is None:
            first_failure = first_failure or now - started
            last_failure = time.monotonic() - started
        elif who != old:
            return {
                "kill_to_new_pod_serving": time.monotonic() - started,
                "failed_from": first_failure if first_failure is not None else float("nan"),
                "failed_until": last_failure if last_failure is not None else float("nan"),
            }
        if now - started > 60:
            raise TimeoutError("no replacement answered within 60 s")
        time.sleep(0.01)  # the polling interval


# --- (c) monitor detection lag ----------------------------------------------------------------


def _rule(action: str, pod_ip: str) -> list[str]:
    return [
        "iptables", "-w", action, "OUTPUT", "-d", f"{pod_ip}/32", "-p", "tcp", "--dport", "8080",
        "-m", "comment", "--comment", TAG, "-j", "REJECT", "--reject-with", "tcp-reset",
    ]  # fmt: skip


def remove_bench_rules() -> None:
    """Delete every rule this benchmark left in the host's OUTPUT chain (e.g. after a crash)."""
    dump = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True)
    for line in dump.stdout.splitlines():
        if TAG in line and line.startswith("-A OUTPUT "):
            args = line.split()[2:]
            subprocess.run(["iptables", "-w", "-D", "OUTPUT", *args], check=False)


def timed(argv: list[str]) -> tuple[float, float]:
    """Run a command; (monotonic before, monotonic after)."""
    before = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return before, time.monotonic()


def detection_lag(ip: str, pod_ip: str, rounds: int, every: float) -> dict[str, Any]:
    marks: list[tuple[tuple[float, float], tuple[float, float]]] = []
    with HttpProbe(f"http://{ip}/", timeout=1) as probe, probe.monitor(every=every) as monitor:
        try:
            for _ in range(rounds):
                time.sleep(1.0)  # a healthy stretch before each block
                blocked = timed(_rule("-I", pod_ip))
                time.sleep(1.0)  # how long the pod stays blocked
                unblocked = timed(_rule("-D", pod_ip))
                marks.append((blocked, unblocked))
            time.sleep(1.0)
        finally:
            remove_bench_rules()
    outages = monitor.outages
    if len(outages) != rounds:
        raise RuntimeError(f"expected {rounds} outages, the monitor saw {len(outages)}: {monitor}")
    start_lags = [o.start - b[1] for o, (b, _) in zip(outages, marks, strict=True)]
    end_lags = [
        (o.end if o.end is not None else float("nan")) - u[1]
        for o, (_, u) in zip(outages, marks, strict=True)
    ]
    command = [after - before for pair in marks for before, after in pair]
    return {
        "every": every,
        "outage_start_minus_block": summary(start_lags),
        "outage_end_minus_unblock": summary(end_lags),
        "iptables_command_seconds": summary(command),
        "within_one_interval": all(-max(command) <= lag <= every for lag in start_lags + end_lags),
        "monitor": str(monitor),
    }


# --- (d) memory past the limit to an OOMKilled restart ----------------------------------------


def oom_restart(kube: Kube, namespace: str, rounds: int, ledger_dir: Path) -> dict[str, Any]:
    settings = Settings(
        cluster="existing", kubeconfig=None, context=None, local_name="local", local_nodes=3
    )
    ledger = Ledger(kube, Owner.current(new_run_id()), directory=ledger_dir)
    ctx = FaultContext(
        kube=kube,
        ledger=ledger,
        safety=Safety(settings, kube.context),
        rng=random.Random(1),
        timeline=Timeline("bench"),
        test="benchmarks/real_node.py",
    )
    runs = []
    for round_ in range(rounds):
        name = f"leak-{round_}"
        kube.apps.create_namespaced_deployment(namespace, demo(name, memory_limit="64Mi"))
        probe = PodsProbe(kube, f"app={name}", namespace)
        probe.assert_ready(within=60)
        started = time.monotonic()
        fault = StressFaults(ctx).pods(f"app={name}", namespace=namespace, memory="limit")
        injected = time.monotonic()
        probe.assert_restarted("OOMKilled", within=60)
        reported = time.monotonic()
        probe.assert_ready(within=60)
        ready = time.monotonic()
        fault.revert()
        runs.append(
            {
                "inject_returns": injected - started,
                "inject_to_oomkilled_restart_reported": reported - started,
                "inject_to_ready_again": ready - started,
            }
        )
        kube.apps.delete_namespaced_deployment(name, namespace)
    return {key: summary([r[key] for r in runs]) for key in runs[0]}


# --- main -------------------------------------------------------------------------------------


def dns_timings(kube: Kube, namespace: str, rounds: int) -> dict[str, Any]:
    server = (realnode.host_ip(), cluster_dns.PORT)
    known = f"{cluster_dns.SERVICE}.{cluster_dns.NAMESPACE}.svc.{cluster_dns.DOMAIN}"
    names = {
        "service_ms": known,
        "nxdomain_ms": f"nothing.{namespace}.svc.{cluster_dns.DOMAIN}",
        "forwarded_ms": "pypi.org",
    }
    results: dict[str, Any] = {}
    for key, name in names.items():
        times = []
        for _ in range(rounds * 20):
            began = time.perf_counter()
            dnsquery.query(server, name)
            times.append((time.perf_counter() - began) * 1000)
        results[key] = summary(times)
    lags = []
    for number in range(rounds):
        name = f"dns-bench-{number}"
        body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
        began = time.perf_counter()
        kube.core.create_namespaced_service(namespace, body)
        fqdn = f"{name}.{namespace}.svc.{cluster_dns.DOMAIN}"
        while not dnsquery.query(server, fqdn).addresses:
            if time.perf_counter() - began > 30:
                raise RuntimeError(f"{fqdn} did not resolve within 30 s")
            time.sleep(0.005)
        lags.append((time.perf_counter() - began) * 1000)
    results["created_to_resolvable_ms"] = summary(lags)
    return results


def measure(kube: Kube, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with workload(kube) as (namespace, ip):
        url = f"http://{ip}/"
        with httpx.Client(timeout=1, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            runs = [kill_to_serving(kube, namespace, url, client) for _ in range(rounds)]
        results["b_kill_to_serving"] = {
            key: summary([r[key] for r in runs]) for key in runs[0] if key
        }
        pod_ip = current_pod(kube, namespace).status.pod_ip
        results["c_monitor_lag"] = detection_lag(ip, pod_ip, rounds, every=0.1)
        with tempfile.TemporaryDirectory(prefix="rnbench-ledger-") as ledger_dir:
            results["d_oom_restart"] = oom_restart(kube, namespace, rounds, Path(ledger_dir))
        results["e_cluster_dns"] = dns_timings(kube, namespace, rounds)
    return results


def table(results: dict[str, Any]) -> str:
    rows = [("measure", "min", "median", "max", "n")]
    for section, values in results.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, dict) and "median" in value:
                rows.append(
                    (f"{section}.{key}", *(str(value[k]) for k in ("min", "median", "max", "n")))
                )
            elif isinstance(value, int | float) and not isinstance(value, bool):
                rows.append((f"{section}.{key}", "", str(value), "", "1"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (a real node, host iptables)", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    busy = running_real_node()
    started_ours = False
    try:
        if busy is None:
            began = time.monotonic()
            up = cli("up", "--real-node")
            if up.returncode != 0:
                print(up.stderr, file=sys.stderr)
                return 1
            started_ours = True
            results["a_cluster_up_real_node_seconds"] = {"value": time.monotonic() - began}
            state_dir = state_root() / BENCH_CLUSTER
        else:
            found = real_node_cluster()
            if found is None:
                print(
                    f"a real node runs here ({busy}) but no local cluster owns it", file=sys.stderr
                )
                return 1
            results["a_note"] = f"`cluster up --real-node` not run: {busy}; read from its logs"
            state_dir = found
        results["a_node_start_from_logs"] = node_start_from_logs(state_dir)
        kube = Kube.from_kubeconfig(state_dir / "kubeconfig", context_name(state_dir.name))
        try:
            results |= measure(kube, args.rounds)
        finally:
            kube.close()
    finally:
        if started_ours:
            with suppress(subprocess.SubprocessError):
                cli("down")
    print(table(results))
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
