"""``pytest-chaos monkey``: ``chaos.random.pods`` outside pytest (a CronJob, a Deployment).

The same schedule, seed and kube-monkey labels as the fixture verb, with the plugin's safety:
the context must be a local/test cluster or allowed (``--allow-context``), the namespace must
pass the allow-list (``--allow-namespace``; system namespaces never by default). Every kill is
printed (flushed) before the pod is deleted, then confirmed with its time and node, so the log
is the record. Ctrl-C and SIGTERM stop the schedule cleanly (a kill under way completes) and
print the summary.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pytest_chaos.errors import ChaosConfigError


def add_parser(commands: Any) -> None:
    """Add the ``monkey`` subcommand to the ``pytest-chaos`` parser."""
    monkey = commands.add_parser(
        "monkey", help="kill random pods of a namespace on a seeded schedule (outside pytest)"
    )
    monkey.add_argument("--namespace", required=True, help="whose pods")
    monkey.add_argument("--every", required=True, help="time between kills, e.g. 30s")
    monkey.add_argument("--for", dest="for_", required=True, help="how long to run, e.g. 10m")
    monkey.add_argument("--selector", help="only pods matching this label selector")
    monkey.add_argument("--exclude", help="never pods matching this label selector")
    monkey.add_argument(
        "--max-in-flight",
        type=int,
        default=1,
        help="skip a tick while this many pods are still going or not Ready (default 1)",
    )
    monkey.add_argument(
        "--kube-monkey",
        action="store_true",
        help="honour kube-monkey's labels (kube-monkey/enabled, /mtbf, /kill-mode)",
    )
    monkey.add_argument("--seed", type=int, help="seed of the choices (default: a new one)")
    monkey.add_argument("--dry-run", action="store_true", help="say who would die, kill nobody")
    monkey.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)")
    monkey.add_argument("--context", help="kubeconfig context (default: current)")
    monkey.add_argument("--local", metavar="NAME", help="the embedded cluster NAME")
    monkey.add_argument(
        "--allow-namespace", action="append", default=[], help="namespace allow-list (repeatable)"
    )
    monkey.add_argument(
        "--allow-context", action="append", default=[], help="more contexts allowed (glob)"
    )
    monkey.set_defaults(func=run)


def _say(message: str) -> None:
    print(message, flush=True)


def _kubeconfig(args: argparse.Namespace) -> tuple[Path, str | None]:
    from pytest_chaos.settings import default_kubeconfig

    if args.local:
        from pytest_chaos.cluster.local import LocalCluster

        cluster = LocalCluster(args.local)
        if not cluster.status().running:
            raise ChaosConfigError(
                f"--local: the embedded cluster {args.local!r} is not running "
                f"(start it with `pytest-chaos cluster up --name {args.local}`)"
            )
        return cluster.kubeconfig, cluster.context
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig()
    if kubeconfig is None or not kubeconfig.is_file():
        raise ChaosConfigError(
            f"--kubeconfig: {kubeconfig or 'none found'} is not a kubeconfig file; pass "
            "--kubeconfig, set KUBECONFIG, or --local NAME for the embedded cluster"
        )
    return kubeconfig, args.context


def run(args: argparse.Namespace) -> int:
    """Check everything, then kill on schedule until it is over or a signal stops it."""
    from pytest_chaos.faults.monkey_plan import check_random_pods
    from pytest_chaos.settings import Settings

    # Every argument is checked before the cluster is even reached.
    schedule = check_random_pods(
        namespace=args.namespace,
        every=args.every,
        for_=args.for_,
        selector=args.selector,
        exclude=args.exclude,
        max_in_flight=args.max_in_flight,
        kube_monkey=args.kube_monkey,
        names={
            "every": "--every",
            "for_": "--for",
            "max_in_flight": "--max-in-flight",
            "selector": "--selector",
            "exclude": "--exclude",
        },
    )
    kubeconfig, context = _kubeconfig(args)

    from pytest_chaos.faults.monkey import Monkey
    from pytest_chaos.kube import Kube
    from pytest_chaos.safety import Safety

    kube = Kube.from_kubeconfig(kubeconfig, context)
    settings = Settings(
        cluster="existing",
        kubeconfig=kubeconfig,
        context=kube.context,
        local_name=args.local or "local",
        local_nodes=1,
        allow_namespaces=tuple(args.allow_namespace),
        allow_contexts=tuple(args.allow_context),
        dry_run=args.dry_run,
    )
    safety = Safety(settings, kube.context)
    safety.check_context()
    safety.check_namespace(args.namespace)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(f"monkey:{seed}")  # noqa: S311 - not for security
    _say(f"monkey: seed={seed} (replay with --seed {seed}); context {kube.context}")
    plan = schedule.describe(args.namespace, args.selector)
    _say(f"monkey: {'dry run: would ' if args.dry_run else ''}{plan}")

    def before_kill(pod: Any) -> None:
        meta = pod["metadata"]
        _say(f"monkey: killing {meta['namespace']}/{meta['name']}")

    monkey = Monkey(
        kube,
        args.namespace,
        schedule,
        rng,
        before_kill=before_kill,
        say=lambda text, _data: _say(f"monkey: {text}"),
        dry_run=args.dry_run,
    )

    # The main thread waits for a signal, not on a join: SIGTERM or Ctrl-C stop the schedule,
    # SIGUSR1 (sent by the schedule's thread when it ends) says it is over. Blocked before the
    # thread starts, so it inherits the mask and every one of them comes to sigwait.
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    main = threading.main_thread().ident
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        monkey.start(on_done=lambda: signal.pthread_kill(main or 0, signal.SIGUSR1))
        got = signal.sigwait(signals)
    finally:
        stopped = monkey.stop()
        while pending := signal.sigpending() & signals:  # e.g. SIGUSR1 after a SIGTERM
            signal.sigwait(pending)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        kube.close()
    endings: dict[int, tuple[str, int]] = {
        signal.SIGTERM: ("stopped by SIGTERM", 0),
        signal.SIGINT: ("stopped by Ctrl-C", 130),
    }
    how, code = endings.get(int(got), ("schedule over", 0))
    _say(f"monkey: {how}: {monkey.summary()}")
    if not stopped:
        print("monkey: the schedule's thread did not stop", file=sys.stderr)
        return 1
    return code if not monkey.errors else 1
