"""The ``pytest-chaos`` command: clean up after crashed runs; manage the embedded cluster."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_chaos.errors import ChaosError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cluster_build(args: argparse.Namespace) -> int:
    from pytest_chaos.cluster import binaries

    wanted: tuple[binaries.Component, ...] = binaries.COMPONENTS
    wanted += (binaries.ISTIO_CONTROL,) if args.istio else ()
    wanted += binaries.KIND_COMPONENTS if args.kind or args.kind_node_image else ()
    for component in wanted:
        if binaries.is_built(component) and not args.force:
            _say(
                f"{component.name} {binaries.module_version(component)}: cached in "
                f"{binaries.component_dir(component)}"
            )
            continue
        binaries.build(component, force=args.force, progress=_say)
    status = _build_images(force=args.force)
    if args.kind_node_image:
        status = status or _build_kind_node_image(force=args.force)
    return status


def _build_kind_node_image(*, force: bool) -> int:
    """The kind node image, into the engine kind would use (podman or docker)."""
    from pytest_chaos.cluster import kind, kind_node_image

    missing = kind_node_image.missing_commands()
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        _say(
            f"kind node image: skipped, this host lacks {', '.join(missing)} "
            f"(apt-get install -y {packages})"
        )
        return 0
    engine = kind.detect_engine()
    result = kind_node_image.build(engine, force=force, progress=_say)
    how = "cached" if result.cached else f"built in {result.seconds:.0f}s"
    _say(f"kind node image: {result.image} in {engine} ({how}; inputs {result.inputs})")
    return 0


def _build_images(*, force: bool) -> int:
    """The real node's images, when this host has what the toolbox image is made of."""
    from pytest_chaos.cluster import images

    missing = [c for c in images.TOOLBOX_COMMANDS if images.find_command(c) is None]
    if missing:
        _say(
            f"real-node images: skipped, this host lacks {', '.join(missing)} "
            f"(apt-get install -y {' '.join(images.TOOLBOX_PACKAGES)})"
        )
        return 0
    built = images.build(force=force, progress=_say)
    _say(f"real-node images: cached in {built.directory}")
    return 0


def _cluster_up(args: argparse.Namespace) -> int:
    from pytest_chaos.cluster import binaries
    from pytest_chaos.cluster.local import LocalCluster

    cluster = LocalCluster(args.name)
    from pytest_chaos.durations import as_seconds

    delay = as_seconds(args.pod_ready_delay, name="--pod-ready-delay")
    real_nodes = 0
    if args.real_nodes is not None:
        from pytest_chaos.capacity import check_count, machine_limit

        real_nodes = check_count(
            args.real_nodes, "--real-nodes", "the command line", machine_limit()
        )
    result = cluster.up(
        nodes=args.nodes,
        port=args.port,
        progress=_say,
        timeout=args.timeout,
        pod_ready_delay=delay,
        real_node="yes" if args.real_node else "no",
        real_nodes=real_nodes,
        registry_port=args.registry_port,
        istio=args.istio,
    )
    how = "reused" if result.reused else f"started in {result.seconds:.1f}s"
    _say(f"local cluster {args.name!r} {how}: {result.server} (context {result.context})")
    _say(f"kubectl {binaries.module_version(binaries.KUBERNETES)}: {binaries.binary('kubectl')}")
    gateway = cluster.istio_gateway()
    if gateway is not None:
        _say(
            f"istio ingress gateway: {gateway.url} (Gateway servers name port "
            f"{gateway.http_port}; Envoy admin {gateway.admin_url})"
        )
    print(f"export KUBECONFIG={result.kubeconfig}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from pytest_chaos.cluster.local import LocalCluster

    survivors = LocalCluster(args.name).down()
    if survivors:
        _say(f"could not stop pids {survivors}")
        return 1
    _say(f"local cluster {args.name!r} is down")
    return 0


def _cluster_load_image(args: argparse.Namespace) -> int:
    from pytest_chaos.cluster.image_load import load_archives
    from pytest_chaos.cluster.local import LocalCluster

    cluster = LocalCluster(args.name)
    if not cluster.status().running:
        _say(
            f"pytest-chaos: error: local cluster {args.name!r} is not running "
            f"({cluster.state_dir}): start it with `pytest-chaos cluster up --real-node "
            f"--name {args.name}`"
        )
        return 1
    result = load_archives(cluster.state_dir, [Path(a) for a in args.archives], progress=_say)
    _say(
        f"loaded {', '.join(result.references)} into {', '.join(result.nodes)} "
        f"in {result.seconds:.1f}s"
    )
    return 0


def _cluster_status(args: argparse.Namespace) -> int:
    from pytest_chaos.cluster import processes
    from pytest_chaos.cluster.local import LocalCluster

    status = LocalCluster(args.name).status()
    if not status.exists:
        print(f"local cluster {args.name!r}: not running ({status.state_dir})")
        if status.orphans:
            print(
                f"  orphaned processes: {list(status.orphans)} "
                "(`pytest-chaos cluster down` stops them)"
            )
        return 3
    state = "ready" if status.ready else ("running, not ready" if status.running else "broken")
    lines = [
        f"local cluster {args.name!r}: {state}",
        f"  server:     {status.server}",
        f"  kubeconfig: {status.state_dir / 'kubeconfig'}",
    ]
    registry = LocalCluster(args.name).registry_address()
    if registry:
        lines.append(f"  registry:   {registry} (push there; pods pull {registry}/IMAGE:TAG)")
    gateway = LocalCluster(args.name).istio_gateway()
    if gateway is not None:
        lines.append(
            f"  istio:      ingress gateway {gateway.url} (Gateway servers name port "
            f"{gateway.http_port}), Envoy admin {gateway.admin_url}"
        )
    lines += [
        f"  {c.component:<24} pid {c.pid:<8} {'running' if c.running else 'NOT RUNNING'}  "
        f"log {c.log}"
        for c in status.components
    ]
    node_up = any(c.component == "containerd" and c.running for c in status.components)
    shims, orphans = split_pod_shims(status.orphans) if node_up else ([], list(status.orphans))
    # A child at work (runc under a shim, a probe under the kubelet) is no orphan either.
    working = {c.pid for c in status.components if c.running} | set(shims)
    orphans = [pid for pid in orphans if not processes.descends_from(pid, working)]
    if shims:
        # containerd-shim daemonizes, so it is no child of a component; while the node's
        # containerd runs, each one holds a running pod's containers.
        lines.append(
            f"  pod shims:  {len(shims)} containerd-shim process(es) of the real node's running "
            f"pods (pids {shims}; not orphans: they go with their pods)"
        )
    if orphans:
        lines.append(
            f"  orphaned processes: {orphans} (of no component: `pytest-chaos cluster down` "
            "stops them)"
        )
    print("\n".join(lines))
    return 0 if status.ready else 1


def split_pod_shims(
    pids: Sequence[int], cmdline: Callable[[int], bytes] | None = None
) -> tuple[list[int], list[int]]:
    """Split pids into containerd's pod shims and the rest (cmdline: how to read one's argv)."""
    read = cmdline or _cmdline
    shims: list[int] = []
    others: list[int] = []
    for pid in pids:
        program = Path(read(pid).split(b"\0", 1)[0].decode(errors="replace")).name
        (shims if program.startswith(_SHIM) else others).append(pid)
    return shims, others


_SHIM = "containerd-shim"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _cleanup_kind(*, dry_run: bool) -> list[str]:
    """Delete kind clusters whose creating session is gone (recorded before creating them)."""
    from pytest_chaos.cluster.kind import cleanup_orphans
    from pytest_chaos.errors import ClusterError

    try:
        return cleanup_orphans(dry_run=dry_run)
    except ClusterError as exc:
        return [f"FAILED deleting an orphaned kind cluster: {exc}"]


def _cleanup(args: argparse.Namespace) -> int:
    from pytest_chaos.cleanup import clean
    from pytest_chaos.cluster.local import LocalCluster
    from pytest_chaos.kube import Kube
    from pytest_chaos.settings import default_kubeconfig

    kubeconfig: Path | None
    context: str | None
    kind_lines = _cleanup_kind(dry_run=args.dry_run)
    for line in kind_lines:
        print(line)
    if args.local:
        cluster = LocalCluster(args.local)
        if not cluster.status().running:
            _say(f"local cluster {args.local!r} is not running: nothing to clean")
            return 0
        kubeconfig, context = cluster.kubeconfig, cluster.context
    else:
        kubeconfig = args.kubeconfig or default_kubeconfig()
        context = args.context
        if kubeconfig is None and kind_lines:
            return 0
        if kubeconfig is None:
            _say(
                "pytest-chaos: error: no kubeconfig: pass --kubeconfig, set KUBECONFIG, or "
                "--local NAME for the embedded cluster"
            )
            return 2
    kube = Kube.from_kubeconfig(kubeconfig, context)
    try:
        kube.check_reachable()
        lines, failures = clean(kube, include_live=args.force, dry_run=args.dry_run, run=args.run)
    finally:
        kube.close()
    for line in lines:
        print(line)
    if not lines:
        print("nothing left behind")
    return 1 if failures else 0


def _rbac(args: argparse.Namespace) -> int:
    from pytest_chaos import rbac

    if args.monkey:
        if args.paths:
            _say("pytest-chaos: error: rbac --monkey NS takes no test paths")
            return 2
        print(rbac.monkey_manifest(args.monkey, name=args.name), end="")
        return 0
    paths = [Path(p) for p in args.paths or ["."]]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        _say(f"pytest-chaos: error: no such path: {', '.join(missing)}")
        return 2
    faults, throwaway = rbac.faults_used(paths)
    _say(
        f"faults used: {', '.join(sorted(faults)) or 'none'}"
        + ("; chaos_namespace: yes" if throwaway else "")
    )
    print(rbac.manifest(faults, throwaway=throwaway, name=args.name), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pytest-chaos`` command."""
    parser = argparse.ArgumentParser(prog="pytest-chaos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cleanup = commands.add_parser(
        "cleanup", help="find faults left by crashed runs and revert them"
    )
    cleanup.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)")
    cleanup.add_argument("--context", help="kubeconfig context (default: current)")
    cleanup.add_argument("--local", metavar="NAME", help="clean the embedded cluster NAME")
    cleanup.add_argument("--dry-run", action="store_true", help="say what would be reverted")
    cleanup.add_argument(
        "--run", metavar="RUN_ID", help="only this run's faults (its id is in the run's header)"
    )
    cleanup.add_argument(
        "--force", action="store_true", help="also revert faults of runs that are still running"
    )
    cleanup.set_defaults(func=_cleanup)

    rbac = commands.add_parser(
        "rbac", help="print the least ClusterRole the faults of a test suite need"
    )
    rbac.add_argument("paths", nargs="*", help="test files or directories (default: .)")
    rbac.add_argument("--name", default="pytest-chaos", help="the ClusterRole's name")
    rbac.add_argument(
        "--monkey",
        metavar="NS",
        help="instead: the ServiceAccount, Role and RoleBinding `pytest-chaos monkey` needs in NS",
    )
    rbac.set_defaults(func=_rbac)

    from pytest_chaos import monkey_cli

    monkey_cli.add_parser(commands)

    cluster = commands.add_parser("cluster", help="the embedded local Kubernetes cluster")
    verbs = cluster.add_subparsers(dest="verb", required=True)

    build = verbs.add_parser("build", help="build the cluster's binaries (cached per machine)")
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.add_argument(
        "--istio",
        action="store_true",
        help="also build istiod and pilot-agent (istio.io/istio; ~11 min cold, ~2.8 GB RAM)",
    )
    build.add_argument(
        "--kind",
        action="store_true",
        help="also build kind v0.33.0, kubeadm and CoreDNS (for --chaos-cluster=kind)",
    )
    build.add_argument(
        "--kind-node-image",
        action="store_true",
        help="with --kind: also assemble the kind node image (podman or docker; mmdebstrap)",
    )
    build.set_defaults(func=_cluster_build)

    up = verbs.add_parser("up", help="start the local cluster (or reuse a running one)")
    up.add_argument(
        "--nodes", type=int, default=3, help="number of fake nodes (default 3; 0 with --real-nodes)"
    )
    up.add_argument(
        "--port",
        type=int,
        default=None,
        help="preferred API server port (another is picked when it is busy)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for ready (not counting the cleanup of a crashed run's leftovers, "
        "nor time this machine stood still)",
    )
    up.add_argument(
        "--pod-ready-delay",
        default="0",
        help="how long pods on the fake nodes take to become Ready, like a real "
        "container starting (e.g. 2s; default: at once)",
    )
    up.add_argument(
        "--real-node",
        action="store_true",
        help="add a real node (containerd, kubelet, kube-proxy) where pods really run; "
        "fails listing what this host lacks",
    )
    up.add_argument(
        "--real-nodes",
        metavar="N",
        default=None,
        help="add N real nodes, each in its own network namespace with its own containerd, "
        "kubelet and kube-proxy, untainted, in zones a, b, c (with them, --nodes 0 works)",
    )
    up.add_argument(
        "--registry-port",
        type=int,
        default=None,
        help="port of the cluster's OCI registry, localhost:PORT for pushes and pods (default "
        "5001; another when it is busy: `status` says which)",
    )
    up.add_argument(
        "--istio",
        action="store_true",
        help="also run istiod (Istio 1.31, its CRDs) and a host ingress gateway (pilot-agent + "
        "Envoy), so VirtualService faults act on real requests; needs `cluster build --istio`",
    )
    up.set_defaults(func=_cluster_up)

    down = verbs.add_parser("down", help="stop the local cluster and remove its state")
    down.set_defaults(func=_cluster_down)

    status = verbs.add_parser("status", help="say what runs")
    status.set_defaults(func=_cluster_status)

    load = verbs.add_parser(
        "load-image",
        help="import image archives (docker save / podman save / OCI archives) into every "
        "real node, keeping their names and tags",
    )
    load.add_argument("archives", nargs="+", metavar="ARCHIVE", help="image archive tar files")
    load.set_defaults(func=_cluster_load_image)
    for sub in (up, down, status, load):
        sub.add_argument("--name", default="local", help="cluster name (default: local)")
    return parser


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # The default SIGTERM action skips every finally block; a half-started cluster would be left
    # running. Exiting through SystemExit lets `up` stop what it started.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors print one clear message and exit with 1."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return int(args.func(args))
    except ChaosError as exc:
        _say(f"pytest-chaos: error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say("pytest-chaos: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
