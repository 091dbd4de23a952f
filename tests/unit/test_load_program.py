"""The load generator (tools/images/load) run for real on this host, read back by the parser
chaos.load.http uses: the JSON it prints is the contract between the two."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_chaos import eventually
from pytest_chaos.faults import load, load_plan


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pytest-chaos-load`` built from tools/images/load (Go, cached build)."""
    from pytest_chaos.cluster import images
    from pytest_chaos.errors import ClusterError

    out = tmp_path_factory.mktemp("load") / load_plan.LOAD_COMMAND
    try:
        return images.go_build(images.sources_dir() / "load", out)
    except ClusterError as exc:  # no Go: make test installs it, a bare checkout may not have it
        pytest.skip(f"cannot build the load generator: {exc}")


class Counting(BaseHTTPRequestHandler):
    """Answers 200, or 503 on /busy; /slow never answers in time; counts what it saw."""

    seen: list[str]
    lock = threading.Lock()
    release = threading.Event()

    def do_GET(self) -> None:
        with self.lock:
            self.seen.append(f"{self.command} {self.path} {self.headers.get('Host')}")
        if self.path == "/slow":
            self.release.wait(30)
        code = 503 if self.path == "/busy" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(Counting):
        pass

    Handler.seen = seen
    Handler.release = threading.Event()
    handler = Handler
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def run(program: Path, tmp_path: Path, *args: str) -> tuple[load.LoadSummary, str]:
    """Run the program; the summary from stdout, and what it wrote to its summary file."""
    summary_file = tmp_path / "termination-log"
    result = subprocess.run(
        [str(program), *args, "-summary", str(summary_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return load.parse_summary(result.stdout), summary_file.read_text()


def test_a_paced_load_sends_the_rate_and_the_server_sees_every_request(
    program: Path, tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    url, seen = server
    args = load.check_load_http(
        f"{url}/", namespace="x", rate=40, concurrency=4, duration="1s", headers={"Host": "w.x"}
    )
    summary, written = run(program, tmp_path, *args.argv()[1:])

    assert 36 <= summary.requests <= 44, summary.describe()
    assert summary.requests == summary.ok == summary.status[200] == len(seen)
    assert set(seen) == {"GET / w.x"}
    assert summary.error_count == 0
    assert 35 <= summary.rate <= 45
    assert set(summary.latency_percentiles) == {"p50", "p95", "p99"}
    assert 0 < summary.latency_percentiles["p50"] <= summary.latency_percentiles["p99"]
    assert summary.interrupted is False
    assert load.parse_summary(written).raw == summary.raw


def test_statuses_of_400_and_more_are_answers_but_not_ok(
    program: Path, tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    url, _seen = server
    summary, _ = run(program, tmp_path, "-url", f"{url}/busy", "-rate", "20", "-duration", "500ms")
    assert summary.requests == summary.status[503] > 0
    assert summary.ok == 0
    assert summary.failed == summary.requests


def test_a_refusing_url_gives_connect_errors_not_a_failure(program: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    summary, _ = run(program, tmp_path, "-url", f"http://127.0.0.1:{port}/", "-rate", "20",
                     "-duration", "500ms")  # fmt: skip
    assert summary.requests == summary.errors["connect"] > 0
    assert summary.ok == 0
    assert "connection refused" in summary.error_samples["connect"]


def test_slow_answers_are_timeouts(
    program: Path, tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    url, _seen = server
    summary, _ = run(program, tmp_path, "-url", f"{url}/slow", "-concurrency", "2", "-duration",
                     "300ms", "-timeout", "200ms")  # fmt: skip
    assert summary.requests == summary.errors["timeout"] >= 2
    assert summary.latency_percentiles == {}


def test_sigterm_mid_run_still_prints_a_partial_summary(
    program: Path, tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    url, seen = server
    summary_file = tmp_path / "termination-log"
    process = subprocess.Popen(
        [str(program), "-url", f"{url}/", "-rate", "50", "-duration", "60s", "-summary",
         str(summary_file)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        eventually(lambda: _at_least(len(seen), 10), within=5, every=0.02)  # the load runs
        os.kill(process.pid, signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    summary = load.parse_summary(out)
    assert summary.interrupted is True
    # The server saw at least 10; one may have been in flight at the SIGTERM: cancelled.
    assert summary.requests + summary.cancelled >= 10, summary.describe()
    assert summary.requests < 60 * 50
    assert summary.ok == summary.requests
    assert summary.elapsed < 30
    assert load.parse_summary(summary_file.read_text()).raw == summary.raw


def _at_least(value: int, bound: int) -> None:
    assert value >= bound, f"{value} < {bound}"


def test_the_go_unit_tests_and_vet_pass(program: Path) -> None:
    """Percentiles, error kinds and flag checks of the Go side (``go vet``, ``go test``)."""
    from pytest_chaos.cluster import images

    go = images._go()
    module = images.sources_dir() / "load"
    env = {**os.environ, "CGO_ENABLED": "0", "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    for command in ([go, "vet", "./..."], [go, "test", "-count=1", "./..."]):
        result = subprocess.run(
            command, cwd=module, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
