"""`pytest-chaos monkey` for real: kills on schedule, with only the Role `rbac --monkey` prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from pytest_chaos import Kube, eventually

POD = {"containers": [{"name": "c", "image": "x"}]}


def bare_pods(kube: Kube, namespace: str, n: int = 5) -> set[str]:
    for i in range(n):
        kube.core.create_namespaced_pod(
            namespace, {"metadata": {"name": f"p{i}", "labels": {"app": "p"}}, "spec": POD}
        )
    return {f"p{i}" for i in range(n)}


def names(kube: Kube, namespace: str) -> set[str]:
    return {str(p.metadata.name) for p in kube.core.list_namespaced_pod(namespace).items}


def monkey(kubeconfig: Path, context: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chaos",
            "monkey",
            f"--kubeconfig={kubeconfig}",
            f"--context={context}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def victims(output: str) -> list[str]:
    """The pods a dry run would kill, in order."""
    return [
        line.split()[4] for line in output.splitlines() if line.startswith("monkey: would kill")
    ]


def service_account_kubeconfig(kube: Kube, namespace: str, tmp_path: Path) -> tuple[Path, str]:
    """Apply what `rbac --monkey` prints; a kubeconfig that is that ServiceAccount only."""
    printed = subprocess.run(
        [sys.executable, "-m", "pytest_chaos", "rbac", "--monkey", namespace, "--name=monkey"],
        capture_output=True,
        text=True,
        check=True,
    )
    account, role, binding = yaml.safe_load_all(printed.stdout)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "list"]}
    ]
    kube.core.create_namespaced_service_account(namespace, account)
    rbac_api = client.RbacAuthorizationV1Api(kube.api_client)
    rbac_api.create_namespaced_role(namespace, role)
    rbac_api.create_namespaced_role_binding(namespace, binding)
    token = kube.core.create_namespaced_service_account_token(
        "monkey", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = yaml.safe_load(kube.kubeconfig.read_text())
    (cluster,) = [c for c in config["contexts"] if c["name"] == kube.context]
    context = "pytest-chaos-monkey-sa"
    config["users"] = [{"name": "monkey", "user": {"token": token}}]
    config["contexts"] = [
        {"name": context, "context": {"cluster": cluster["context"]["cluster"], "user": "monkey"}}
    ]
    config["current-context"] = context
    path = tmp_path / "monkey-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, context


def test_the_monkey_kills_on_schedule_with_only_its_printed_role(
    kube: Kube, chaos_namespace: str, tmp_path: Path
) -> None:
    everyone = bare_pods(kube, chaos_namespace)
    kubeconfig, context = service_account_kubeconfig(kube, chaos_namespace, tmp_path)
    args = ["--namespace", chaos_namespace, "--every=0.2s", "--for=0.6s", "--seed=7"]
    args.append("--max-in-flight=5")

    dry = monkey(kubeconfig, context, *args, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.count("monkey: would kill") == 3
    assert names(kube, chaos_namespace) == everyone  # a dry run kills nobody
    again = monkey(kubeconfig, context, *args, "--dry-run")
    assert victims(again.stdout) == victims(dry.stdout)  # same seed, same pods: same victims

    done = monkey(kubeconfig, context, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "403" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "monkey: seed=7 (replay with --seed 7); context pytest-chaos-monkey-sa"
    killing = [line.split()[-1] for line in lines if line.startswith("monkey: killing ")]
    killed = [line.split()[3] for line in lines if line.startswith("monkey: killed ")]
    assert len(killing) == 3
    assert killing == killed  # each kill announced before it is made, then confirmed
    for victim in killing:  # announced before, confirmed after
        assert lines.index(f"monkey: killing {victim}") < next(
            i
            for i, line in enumerate(lines)
            if line.startswith("monkey: killed +") and victim in line
        )
    assert lines[-1].startswith("monkey: schedule over: 3 kill(s)")
    gone = {v.split("/")[1] for v in killing}

    def really_gone() -> None:
        assert names(kube, chaos_namespace) == everyone - gone

    eventually(really_gone, within=30, every=0.1)


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 0, "stopped by SIGTERM"), (signal.SIGINT, 130, "stopped by Ctrl-C")],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_a_signal_stops_the_monkey_cleanly(
    kube: Kube, chaos_namespace: str, signum: int, code: int, said: str
) -> None:
    bare_pods(kube, chaos_namespace, n=3)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest_chaos", "monkey", f"--kubeconfig={kube.kubeconfig}"),
            *(f"--context={kube.context}", "--namespace", chaos_namespace),
            *("--every=5s", "--for=10m", "--max-in-flight=3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("monkey: killed "):
                break
        process.send_signal(signum)
        started = time.monotonic()
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert time.monotonic() - started < 10
    assert process.returncode == code, (rest, err)
    # Stopped at once, saying what it did (a seeded schedule may put two kills close together).
    assert re.search(rf"monkey: {said}: [12] kill\(s\)", rest), rest


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--namespace=kube-system", "--every=1s", "--for=2s"], "kube-system"),
        (["--namespace=shop", "--every=1m", "--for=30s"], "--every='1m' is longer than --for="),
        (["--namespace=shop", "--every=soon", "--for=30s"], "--every='soon' is not a duration"),
        (["--namespace=shop", "--every=1s", "--for=2s", "--max-in-flight=0"], "--max-in-flight=0"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(kube: Kube, args: list[str], error: str) -> None:
    refused = monkey(kube.kubeconfig, kube.context, *args)
    assert refused.returncode == 1
    assert error in refused.stderr
    assert "monkey: seed=" not in refused.stdout  # nothing started
