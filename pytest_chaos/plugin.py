"""pytest-chaos's pytest plugin: hooks only.

Options, markers, the header (with the seed), collection-time marker validation, the runtest
wrappers that inject marker faults and check the steady state, the verdicts, the per-test
timeline and junit properties, and the chaos summary. Nothing heavy is imported here: the
Kubernetes and HTTP clients load lazily, when a test first needs them.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.errors import (
    ChaosConfigError,
    ChaosError,
    InconclusiveError,
    NotSteadyError,
    SteadyMarkerError,
)
from pytest_chaos.fixtures import (
    RUN_KEY,
    STATS_KEY,
    STEADY_KEY,
    TIMELINE_KEY,
    chaos,
    chaos_cluster,
    chaos_namespace,
    chaos_session,
    class_chaos,
    kube,
    module_chaos,
    real_node,
    steady,
)
from pytest_chaos.markers import (
    fault_markers,
    marker_lines,
    problems_of,
    resolve_namespaces,
    uses_chaos,
    uses_test_namespace,
)
from pytest_chaos.settings import OPTIONS, SETTINGS_KEY, resolve

if TYPE_CHECKING:
    from pytest_chaos.hypotheses import Hypotheses

__all__ = [
    "chaos",
    "chaos_cluster",
    "chaos_namespace",
    "chaos_session",
    "class_chaos",
    "kube",
    "module_chaos",
    "real_node",
    "steady",
]

_SIGTERM_KEY = pytest.StashKey[Any]()
#: Outputs (--chaos-report, --chaos-journal) that could not be written at the end of the run.
_OUTPUT_ERRORS_KEY = pytest.StashKey[list[str]]()
HYPOTHESES_KEY = pytest.StashKey["Hypotheses"]()
#: Per test: outcome, timeline, probe summaries (from reports, so xdist workers' arrive too).
_TESTS_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()
#: The terminal summary's line about the notification (posted, or why not).
_NOTIFY_KEY = pytest.StashKey[str]()


def _interrupt_on_sigterm(signum: int, _frame: object) -> None:
    # pytest handles Ctrl-C by tearing every fixture down (so every fault is reverted); the
    # default SIGTERM action would kill the process with faults still in the cluster.
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM): reverting chaos faults before exiting")


_VERDICT = "chaos_verdict"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the pytest_chaos_* hooks (see hookspecs.py)."""
    from pytest_chaos import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--chaos-*`` option and its ``chaos_*`` ini key once."""
    group = parser.getgroup("chaos", "resilience (chaos) testing on Kubernetes")
    for option in OPTIONS:
        if option.kind == "bool":
            group.addoption(
                option.flag, dest=option.dest, action="store_true", default=None, help=option.help
            )
            parser.addini(option.ini, help=option.help, type="bool", default=None)
        elif option.kind == "list":
            group.addoption(
                option.flag,
                dest=option.dest,
                action="append",
                default=None,
                metavar=option.name.split("_")[-1].upper(),
                help=option.help,
            )
            parser.addini(option.ini, help=option.help, type="linelist", default=[])
        else:
            group.addoption(
                option.flag,
                dest=option.dest,
                default=None,
                help=option.help,
                choices=option.choices,
            )
            parser.addini(option.ini, help=option.help, default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Register markers, resolve settings (bad values: usage error, exit 4), fix run id + seed."""
    config.pluginmanager.register(_TestCollector(config), "chaos-test-collector")
    for line in marker_lines(signatures=bool(config.getoption("markers", default=False))):
        config.addinivalue_line("markers", line)
    config.addinivalue_line(
        "markers",
        "real_node: needs a real node where pods really run (the local cluster's, with "
        "chaos_local_real_node = auto); skipped with the reason when there is none",
    )
    try:
        settings = resolve(config)
        if getattr(config, "workerinput", None) is None:
            from pytest_chaos.report.outputs import check_outputs

            check_outputs(
                [
                    ("--chaos-report", settings.report),
                    ("--chaos-journal", settings.journal),
                    ("--junitxml", getattr(config.option, "xmlpath", None)),
                ]
            )
    except ChaosConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "chaos_run" in workerinput:
        run_id, seed = workerinput["chaos_run"]
    else:
        import secrets

        from pytest_chaos.ledger import new_run_id

        run_id = new_run_id()
        seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31)
    config.stash[RUN_KEY] = (str(run_id), int(seed))
    if settings.journal is not None and workerinput is None:
        from pytest_chaos.report import journal

        # Once per run, by the controller: xdist workers only append.
        journal.start(
            settings.journal, run=str(run_id), seed=int(seed), append=settings.journal_append
        )
    import signal
    import threading

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Under xdist, the controller: every worker uses the run's id and seed."""
    node.workerinput["chaos_run"] = list(node.config.stash[RUN_KEY])


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which cluster chaos tests use, and the seed that replays their random choices."""
    settings = config.stash[SETTINGS_KEY]
    run_id, seed = config.stash[RUN_KEY]
    from pytest_chaos.cluster import provider_for

    where = provider_for(settings).describe()
    lines = [
        f"chaos: {where}",
        f"chaos: seed={seed} (replay with --chaos-seed={seed}), run {run_id}",
    ]
    if settings.dry_run:
        lines.append("chaos: DRY RUN: targets are resolved and reported, nothing is touched")
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    """``--chaos-cleanup``: revert leftovers of crashed runs and exit."""
    settings = session.config.stash[SETTINGS_KEY]
    if not settings.cleanup or hasattr(session.config, "workerinput"):
        return
    from pytest_chaos.cleanup import cleanup_for_settings

    lines, failures = cleanup_for_settings(settings)
    text = "\n".join(lines) or "chaos cleanup: nothing left behind"
    pytest.exit(text, returncode=1 if failures else 0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Validate every chaos marker (one usage error for all problems); tag chaos tests."""
    problems = [problem for item in items for problem in problems_of(item)]
    if problems:
        raise pytest.UsageError("invalid chaos markers:\n  " + "\n  ".join(problems))
    for item in items:
        if uses_chaos(item) and not item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.chaos)
        if item.get_closest_marker("real_node"):
            fixturenames = getattr(item, "fixturenames", None)
            if fixturenames is not None and "real_node" not in fixturenames:
                fixturenames.insert(0, "real_node")  # skip before anything is set up
        if fault_markers(item) or item.get_closest_marker("steady_state"):
            # The wrappers below need these fixtures; request them like the test does.
            fixturenames = getattr(item, "fixturenames", None)
            if fixturenames is not None:
                needed = ["chaos", "steady"]
                if uses_test_namespace(item):
                    needed.append("chaos_namespace")
                for name in needed:
                    if name not in fixturenames:
                        fixturenames.append(name)


def _hypotheses(item: pytest.Item) -> Hypotheses | None:
    """The test's steady_state hypotheses, built once when it is set up."""
    if HYPOTHESES_KEY in item.stash:
        return item.stash[HYPOTHESES_KEY]
    marker = item.get_closest_marker("steady_state")
    steady_probes = item.stash.get(STEADY_KEY, None)
    if marker is None or steady_probes is None:
        return None
    from pytest_chaos.hypotheses import build

    kwargs = dict(marker.kwargs)
    hypotheses = build(
        steady_probes,
        steady_probes.kube,
        kwargs,
        resolve_namespaces(kwargs["namespace"], item),
        lambda value: resolve_namespaces(value, item),
    )
    item.stash[HYPOTHESES_KEY] = hypotheses
    return hypotheses


def _steady_check(item: pytest.Item, *, when: str) -> None:
    hypotheses = _hypotheses(item)
    if hypotheses is None:
        return
    timeline = item.stash.get(TIMELINE_KEY, None)
    try:
        hypotheses.check()
    except NotSteadyError as exc:
        if timeline is not None:
            timeline.add("steady", f"NOT steady {when}")
        prefix = "not steady before chaos" if when == "before" else "not steady after revert"
        raise SteadyMarkerError(f"{prefix}:\n{exc}") from None
    if timeline is not None:
        timeline.add("steady", f"steady {when}")


def _stop_monitors(item: pytest.Item) -> None:
    """Stop the during=True monitors; FAIL "deviated during chaos" when one saw a dip."""
    hypotheses = item.stash.get(HYPOTHESES_KEY, None)
    if hypotheses is None:
        return
    deviations = hypotheses.stop_monitors()
    timeline = item.stash.get(TIMELINE_KEY, None)
    if not deviations:
        if timeline is not None and hypotheses.monitors:
            timeline.add("steady", "steady during chaos: no hypothesis deviated")
        return
    from pytest_chaos.hypotheses import deviated_message

    origin = timeline.started if timeline is not None else deviations[0].start
    message = deviated_message(deviations, origin)
    if timeline is not None:
        timeline.add("steady", message.splitlines()[0])
    raise SteadyMarkerError(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """After the fixtures: the steady_state check before chaos (failure: ERROR), then monitors."""
    yield
    _steady_check(item, when="before")
    hypotheses = item.stash.get(HYPOTHESES_KEY, None)
    if hypotheses is not None and hypotheses.during:
        hypotheses.start_monitors()
        timeline = item.stash.get(TIMELINE_KEY, None)
        if timeline is not None:
            timeline.add(
                "steady", f"monitoring {len(hypotheses.items)} hypothesis(es) during chaos"
            )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Inject the marker faults, run the test, revert them in ``finally``, check steady state."""
    injected: list[Any] = []
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    injector = funcargs.get("chaos")
    try:
        for marker, args, kwargs in fault_markers(item):
            if "namespace" in kwargs:
                kwargs = {**kwargs, "namespace": resolve_namespaces(kwargs["namespace"], item)}
            family = getattr(injector, marker.family)
            injected.append(getattr(family, marker.verb)(*args, **kwargs))
        yield
    finally:
        errors = []
        for fault in reversed(injected):
            try:
                fault.revert()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("chaos marker reverts failed", errors)
    _stop_monitors(item)
    _steady_check(item, when="after")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Stop monitors a failed test left running (their verdict no longer matters)."""
    hypotheses = item.stash.get(HYPOTHESES_KEY, None)
    if hypotheses is not None:
        hypotheses.stop_monitors()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the chaos timeline on failure, junit properties, and the chaos verdict."""
    report = yield
    timeline = item.stash.get(TIMELINE_KEY, None)
    if call.when == "call":
        from pytest_chaos.report.junit import fault_properties, monitor_properties

        steady_probes = item.stash.get(STEADY_KEY, None)
        http_monitors = list(getattr(steady_probes, "monitors", []))
        object_monitors = list(getattr(steady_probes, "object_monitors", []))
        item.user_properties.extend(fault_properties(timeline))
        item.user_properties.extend(monitor_properties(http_monitors, object_monitors))
        if timeline is not None:
            for monitor in http_monitors:
                timeline.add("probe", f"{monitor.probe.method} {monitor.probe.url}: {monitor}")
            for watched in object_monitors:
                timeline.add("probe", f"{watched.what}: {watched}")
    if call.when == "teardown" and timeline is not None and timeline.events:
        from dataclasses import asdict

        steady_probes = item.stash.get(STEADY_KEY, None)
        report.__dict__["chaos"] = {
            "timeline": [asdict(e) for e in timeline.events],
            # Each monitor with what it watched, as its probe line in the timeline says it.
            "monitors": [
                *(
                    f"{m.probe.method} {m.probe.url}: {m}"
                    for m in getattr(steady_probes, "monitors", [])
                ),
                *(f"{m.what}: {m}" for m in getattr(steady_probes, "object_monitors", [])),
            ],
        }
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        if isinstance(exc, ChaosError | SteadyMarkerError):
            report.longrepr = _short_repr(call.excinfo)
        if isinstance(exc, InconclusiveError):
            report.__dict__[_VERDICT] = "inconclusive"
        elif isinstance(exc, ChaosError) and call.when == "call":
            report.__dict__[_VERDICT] = "chaos error"
        if timeline is not None and timeline.events:
            report.sections.append(("chaos timeline", timeline.render()))
    if report.failed and call.when == "call" and _VERDICT not in report.__dict__:
        dead = _dead_infrastructure(item.config)
        if dead:
            # The cluster itself broke under the test: that proves nothing about the system.
            report.__dict__[_VERDICT] = "chaos infrastructure"
            report.sections.append(
                (
                    "chaos infrastructure",
                    f"the {item.config.stash[SETTINGS_KEY].cluster} cluster's {', '.join(dead)} "
                    "died during the test: this failure "
                    "is the test infrastructure's, not the system under test's; see the "
                    "component logs (`pytest-chaos cluster status`)",
                )
            )
    return report


def _dead_infrastructure(config: pytest.Config) -> list[str]:
    """Components of the test bed (API server, containerd, kubelet...) that died, if any."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        return []
    from pytest_chaos.cluster import provider_for

    return provider_for(settings).dead_components()


def _short_repr(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """Our own errors need no traceback through pytest-chaos: the message, and the user's line."""
    import os

    import pytest_chaos

    package = os.path.dirname(pytest_chaos.__file__)
    where = ""
    for entry in reversed(excinfo.traceback):
        path = str(entry.path)
        if not path.startswith(package) and "/_pytest/" not in path and "pluggy" not in path:
            where = f"{path}:{entry.lineno + 1}: in {entry.name}\n    {entry.statement}\n"
            break
    return f"{where}{excinfo.typename}: {excinfo.value}"


class _TestCollector:
    """Each test's outcome and chaos data, for the HTML report and the notification.

    Read from the reports, so tests run by xdist workers arrive at the controller too.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tests = self.config.stash.setdefault(_TESTS_KEY, {})
        entry = tests.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed"})
        verdict = report.__dict__.get(_VERDICT)
        if report.failed:
            failed = "failed" if report.when == "call" else "error"
            entry["outcome"] = f"error ({verdict})" if verdict else failed
            if "message" not in entry:  # the first failure says why
                from pytest_chaos.report.html import failure_message

                entry["message"] = failure_message(report.longrepr)
        elif report.skipped:
            entry["outcome"] = "skipped"
        chaos_data = report.__dict__.get("chaos")
        if chaos_data:
            entry.update(chaos_data)


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A fault that did not take effect, or broken chaos machinery, is an ERROR, not a FAIL."""
    verdict = report.__dict__.get(_VERDICT)
    if verdict and report.when == "call" and report.failed:
        return "error", "E", f"ERROR ({verdict})"
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session when a revert failed or a fault was left in the cluster."""
    config = session.config
    stats = config.stash.get(STATS_KEY, [])
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None and stats:
        workeroutput["chaos_stats"] = stats
    dirty = any(s["revert_failures"] or s["leftovers"] for s in stats)
    if dirty and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if workeroutput is None:
        _publish(config, stats)
        if config.stash.get(_OUTPUT_ERRORS_KEY, []) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _publish(config: pytest.Config, stats: list[dict[str, Any]]) -> None:
    """The controller's last word: the HTML report and the notification, when asked for."""
    settings = config.stash[SETTINGS_KEY]
    run_id, seed = config.stash[RUN_KEY]
    from pytest_chaos.report.totals import RunTotals

    total = RunTotals.of(stats)
    tests = list(config.stash.get(_TESTS_KEY, {}).values())
    from pytest_chaos.report.outputs import write_failed

    failed = config.stash.setdefault(_OUTPUT_ERRORS_KEY, [])
    if settings.report is not None:
        from pytest_chaos.report import html

        try:
            html.write(
                settings.report,
                [t for t in tests if t.get("timeline")],
                total,
                seed=seed,
                run=run_id,
            )
        except OSError as exc:
            failed.append(write_failed("--chaos-report", settings.report, exc))
    from collections import Counter

    from pytest_chaos.report import notify

    outcomes = dict(Counter(t["outcome"].split()[0] for t in tests))
    run_summary = notify.summary(total, outcomes, tests, run=run_id, seed=seed)
    if settings.notify is not None and notify.wanted(settings.notify_on, run_summary):
        delivery = notify.send(settings.notify, run_summary, timeout=settings.notify_timeout)
        config.stash[_NOTIFY_KEY] = delivery.line(settings.notify)
    if settings.journal is not None:
        from pytest_chaos.report import journal

        chaos_tests = [t for t in tests if t.get("timeline")]
        try:
            journal.finish(
                settings.journal,
                run=run_id,
                tests=chaos_tests,
                outcomes=outcomes,
                totals=total.as_dict(),
            )
        except OSError as exc:
            failed.append(write_failed("--chaos-journal", settings.journal, exc))
    summary = {
        **{k: v for k, v in run_summary.items() if k != "chaos"},
        **total.as_dict(),
    }
    config.hook.pytest_chaos_run_summary(config=config, summary=summary)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Under xdist, the controller: collect a worker's chaos figures."""
    output = getattr(node, "workeroutput", {})
    config = node.config
    config.stash.setdefault(STATS_KEY, []).extend(output.get("chaos_stats", []))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The chaos summary: faults injected and reverted, revert failures, leftovers."""
    for problem in config.stash.get(_OUTPUT_ERRORS_KEY, []):
        terminalreporter.write_line(f"chaos: ERROR {problem}", red=True)
    notified = config.stash.get(_NOTIFY_KEY, None)
    if notified is not None:
        terminalreporter.write_line(f"chaos: {notified}", yellow=notified.startswith("WARNING"))
    if config.stash[SETTINGS_KEY].dry_run:
        plans = [
            f"{test['nodeid']}: {event['text']}"
            for test in config.stash.get(_TESTS_KEY, {}).values()
            for event in test.get("timeline", [])
            if event["phase"] == "plan"
        ]
        terminalreporter.section("chaos dry run plan")
        for line in plans or ["no fault would be injected"]:
            terminalreporter.write_line(line)
    all_stats = config.stash.get(STATS_KEY, [])
    if not all_stats:
        return
    from pytest_chaos.report.totals import RunTotals

    totals = RunTotals.of(all_stats)
    terminalreporter.section("chaos summary")
    terminalreporter.write_line(totals.text())
    for line in totals.problems:
        terminalreporter.write_line(f"  {line}", red=True)
    if totals.dirty:
        terminalreporter.write_line(
            "the cluster may still carry faults: run `pytest-chaos cleanup`", red=True
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the SIGTERM handler."""
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None:
        import signal

        signal.signal(signal.SIGTERM, previous)
