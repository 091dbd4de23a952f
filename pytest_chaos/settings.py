"""One frozen Settings object, resolved once from CLI > environment > ini > default.

Every option is declared once in OPTIONS; ``plugin.py`` registers them (a ``--chaos-*`` flag and a
``chaos_*`` ini key each) and :func:`resolve` turns them into Settings. An invalid value raises
ChaosConfigError naming the option and where the value came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import pytest

from pytest_chaos.errors import ChaosConfigError

ClusterKind = Literal["existing", "local", "kind"]
CLUSTER_KINDS: tuple[str, ...] = ("existing", "local", "kind")


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its flag, ini key, environment variable and help."""

    name: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None
    kind: Literal["str", "bool", "list"] = "str"
    #: Another environment variable read when :attr:`env` is unset (e.g. a conventional name).
    env_alias: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--chaos-cluster``."""
        return "--chaos-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini key, e.g. ``chaos_cluster``."""
        return "chaos_" + self.name

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``PYTEST_CHAOS_CLUSTER``."""
        return "PYTEST_CHAOS_" + self.name.upper()

    @property
    def dest(self) -> str:
        """The argparse destination."""
        return "chaos_" + self.name


#: The toolbox image the local cluster's real node has imported (iptables, iproute2, stress-ng,
#: pytest-chaos-hold).
DEFAULT_TOOLBOX_IMAGE = "localhost/pytest-chaos/toolbox:1.0"

#: Default of --chaos-lease-wait: how long a fault waits for a target another run's fault holds.
DEFAULT_LEASE_WAIT = 300.0
#: Default of --chaos-revert-timeout: how long a revert retries an API server that refuses it.
DEFAULT_REVERT_TIMEOUT = 120.0

#: Contexts chaos may touch without being told: local and throw-away test clusters.
DEFAULT_ALLOWED_CONTEXTS: tuple[str, ...] = (
    "pytest-chaos-*",
    "kind-*",
    "k3d-*",
    "minikube",
    "docker-desktop",
    "rancher-desktop",
    "orbstack",
    "colima*",
)
#: Namespaces refused unless listed in --chaos-allow-namespace by name.
PROTECTED_NAMESPACES: tuple[str, ...] = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
    "local-path-storage",
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "cluster",
        "which cluster to test against: existing (a kubeconfig), local (the "
        "embedded cluster) or kind; default: existing when a kubeconfig is found, else local",
        choices=CLUSTER_KINDS,
    ),
    Option(
        "kubeconfig",
        "kubeconfig file of an existing cluster (default: $KUBECONFIG, then ~/.kube/config)",
    ),
    Option("context", "kubeconfig context to use (default: the kubeconfig's current context)"),
    Option("local_name", "name of the embedded local cluster to start or reuse", default="local"),
    Option("kind_name", "name of the kind cluster to create or reuse", default="pytest-chaos"),
    Option("kind_workers", "number of kind worker nodes (zones a, b, c in turn)", default="0"),
    Option(
        "kind_image",
        "kind node image (default: localhost/pytest-chaos/kind-node:v1.32.5, assembled as "
        "docs/kind.md says; kindest/node:v1.32.5 where a "
        "registry is reachable)",
    ),
    Option(
        "kind_keep",
        "keep a kind cluster this session created at the end (it is deleted otherwise)",
        kind="bool",
    ),
    Option("local_nodes", "number of fake nodes of the embedded local cluster", default="3"),
    Option(
        "local_pod_ready_delay",
        "how long pods on the embedded cluster's fake nodes take to "
        "become Ready, like a real container starting (e.g. 2s)",
        default="0",
    ),
    Option(
        "local_real_node",
        "add a real node (containerd, kubelet, kube-proxy) to the embedded cluster: yes, no, or "
        "auto (when this host can run one; tests needing it skip with the reason otherwise)",
        default="no",
        choices=("yes", "no", "auto"),
    ),
    Option(
        "local_real_nodes",
        "add this many real nodes to the embedded cluster, each in its own network namespace "
        "(own containerd, kubelet, kube-proxy), untainted, in zones a, b, c; with them, "
        "chaos_local_nodes may be 0",
    ),
    Option(
        "local_istio",
        "run istiod (Istio 1.31) and a host ingress gateway (pilot-agent + Envoy) in the "
        "embedded cluster, so Istio faults act on real requests: yes or no (needs `pytest-chaos "
        "cluster build --istio`)",
        kind="bool",
    ),
    Option(
        "local_image",
        "image archive (docker save / podman save / OCI archive) to load into the embedded "
        "cluster's real node at session start, keeping its names (repeatable)",
        kind="list",
    ),
    Option(
        "allow_namespace",
        "namespace chaos may touch (repeatable; default: any but "
        "kube-system and other system namespaces; namespaces made by chaos_namespace are "
        "always allowed)",
        kind="list",
    ),
    Option(
        "allow_context",
        "kubeconfig context (glob) chaos may touch (repeatable); local and "
        "test clusters (kind-*, minikube, docker-desktop, the embedded cluster) always are",
        kind="list",
    ),
    Option(
        "dry_run",
        "resolve targets and report the plan (as skips) without touching anything",
        kind="bool",
    ),
    Option("seed", "seed of every random choice (default: a new one, printed in the header)"),
    Option(
        "max_percent",
        "blast radius: the largest percent of a workload's pods one fault may hit (default 100)",
        default="100",
    ),
    Option(
        "toolbox_image",
        "image of the ephemeral containers that cut connections and burn CPU (needs iptables, "
        "ss, sh; default: the image the local cluster's real node imports)",
        default=None,
    ),
    Option(
        "journal",
        "write every chaos activity (fault, revert, probe, verdict) as a JSON line to this file; "
        "it is truncated when the run starts",
    ),
    Option(
        "journal_append",
        "append to the --chaos-journal file instead of truncating it when the run starts",
        kind="bool",
    ),
    Option("report", "write an HTML report of the run's chaos (tests, faults, timelines) here"),
    Option(
        "notify",
        "post the run's summary to this webhook URL (Block Kit for a Slack incoming webhook, "
        "JSON otherwise); the URL is a secret: prefer $PYTEST_CHAOS_NOTIFY_URL or "
        "--chaos-notify-url-file to the command line",
        env_alias="PYTEST_CHAOS_NOTIFY_URL",
    ),
    Option(
        "notify_url_file",
        "read the --chaos-notify webhook URL from this file (e.g. a mounted Secret)",
    ),
    Option(
        "notify_on",
        "when to notify: failure (a failed run, or faults left behind), always, or never "
        "(default failure)",
        default="failure",
        choices=("failure", "always", "never"),
    ),
    Option(
        "notify_timeout",
        "total time the notification may take, retries included, e.g. 10s; when it is spent "
        "the run ends with a warning, never a failure (default 10s)",
        default="10s",
    ),
    Option("cleanup", "revert leftovers of crashed runs in the cluster, then exit", kind="bool"),
    Option(
        "lease_wait",
        "how long a fault waits for a target (a Deployment, a node...) that another run's fault "
        "holds, e.g. 5m; 0 fails at once with an error naming the holder (default 300s)",
        default="300s",
    ),
    Option(
        "revert_timeout",
        "how long a revert retries an API server that refuses it (connection refused, 5xx, an "
        "etcd leader change) before leaving its ledger record to `pytest-chaos cleanup` "
        "(default 120s)",
        default="120s",
    ),
)


class _ConfigLike(Protocol):
    def getoption(self, name: str) -> Any: ...

    def getini(self, name: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved chaos settings of one pytest run."""

    cluster: ClusterKind
    kubeconfig: Path | None
    context: str | None
    local_name: str
    local_nodes: int
    local_pod_ready_delay: float = 0.0
    local_real_node: Literal["yes", "no", "auto"] = "no"
    local_real_nodes: int = 0
    local_images: tuple[Path, ...] = ()
    local_istio: bool = False
    allow_namespaces: tuple[str, ...] = ()
    allow_contexts: tuple[str, ...] = ()
    dry_run: bool = False
    seed: int | None = None
    max_percent: float = 100.0
    journal: Path | None = None
    journal_append: bool = False
    cleanup: bool = False
    report: Path | None = None
    notify: str | None = None
    notify_on: Literal["failure", "always", "never"] = "failure"
    notify_timeout: float = 10.0
    toolbox_image: str = DEFAULT_TOOLBOX_IMAGE
    lease_wait: float = DEFAULT_LEASE_WAIT
    revert_timeout: float = DEFAULT_REVERT_TIMEOUT
    kind_name: str = "pytest-chaos"
    kind_workers: int = 0
    kind_image: str = ""
    kind_keep: bool = False


#: Where the plugin keeps the resolved Settings on the pytest config.
SETTINGS_KEY = pytest.StashKey[Settings]()


def _raw(config: _ConfigLike, option: Option) -> tuple[str | None, str]:
    value = config.getoption(option.dest)
    if value is not None and value is not False and value != []:
        values = list(value) if option.kind == "list" else [str(value)]
        if any(not str(v).strip() for v in values):
            raise ChaosConfigError(
                f"{option.flag}: an empty value is not a setting; give a value "
                f"({option.flag}=VALUE) or leave the option out for its default"
            )
        if option.kind == "list":
            return ",".join(value), option.flag
        return str(value), option.flag
    for name in (option.env, option.env_alias):
        env = os.environ.get(name) if name else None
        if env:
            return env, f"environment variable {name}"
    ini = config.getini(option.ini)
    if ini:
        if option.kind == "list":
            return ",".join(
                ini if isinstance(ini, list) else str(ini).split()
            ), f"ini key {option.ini}"
        return str(ini), f"ini key {option.ini}"
    return option.default, "default"


def _as_list(value: str | None) -> tuple[str, ...]:
    return tuple(
        part.strip() for part in (value or "").replace("\n", ",").split(",") if part.strip()
    )


def _as_bool(option: Option, value: str | None, source: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ChaosConfigError(
        f"{option.flag}: {value!r} from {source} is not a boolean (use true/false)"
    )


def default_kubeconfig() -> Path | None:
    """The kubeconfig kubectl would use: the first file of $KUBECONFIG, then ~/.kube/config."""
    for candidate in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if candidate and Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    home = Path("~/.kube/config").expanduser()
    return home if home.is_file() else None


def kubeconfig_origin(kubeconfig: Path | None) -> str:
    """Which kubeconfig an existing cluster is reached through, and why, for the header.

    ``kubeconfig`` is the file from ``--chaos-kubeconfig`` (or its ini key/environment); None
    means kubectl's choice: the first file of ``$KUBECONFIG``, then ``~/.kube/config``.
    """
    if kubeconfig is not None:
        return str(kubeconfig)
    chosen = default_kubeconfig()
    if chosen is None:
        return "no kubeconfig found ($KUBECONFIG unset, no ~/.kube/config)"
    listed = [Path(c).expanduser() for c in os.environ.get("KUBECONFIG", "").split(os.pathsep) if c]
    if chosen in listed:
        return f"{chosen} from $KUBECONFIG"
    return f"{chosen} (the default, ~/.kube/config)"


def resolve(config: _ConfigLike) -> Settings:
    """Build Settings from a pytest config; raise ChaosConfigError naming option and source."""
    raw = {o.name: _raw(config, o) for o in OPTIONS}
    for option in OPTIONS:
        value, source = raw[option.name]
        if option.choices and value is not None and value not in option.choices:
            raise ChaosConfigError(
                f"{option.flag}: invalid value {value!r} from {source}; "
                f"choose one of {', '.join(option.choices)}"
            )
    kubeconfig_value, kubeconfig_source = raw["kubeconfig"]
    kubeconfig = Path(kubeconfig_value).expanduser() if kubeconfig_value else None
    if kubeconfig is not None and not kubeconfig.is_file():
        raise ChaosConfigError(
            f"--chaos-kubeconfig: {kubeconfig} (from {kubeconfig_source}) is not a file"
        )
    cluster_value = raw["cluster"][0]
    if cluster_value is None:
        cluster_value = "existing" if (kubeconfig or default_kubeconfig()) else "local"
    workers_value, workers_source = raw["kind_workers"]
    try:
        kind_workers = int(workers_value or "0")
        if kind_workers < 0:
            raise ValueError
    except ValueError:
        raise ChaosConfigError(
            f"--chaos-kind-workers: {workers_value!r} from {workers_source} is not "
            "a whole number of 0 or more"
        ) from None
    real_nodes = _real_nodes(raw["local_real_nodes"])
    nodes_value, nodes_source = raw["local_nodes"]
    try:
        nodes = int(nodes_value or "3")
        if nodes < (0 if real_nodes else 1):
            raise ValueError
    except ValueError:
        raise ChaosConfigError(
            f"--chaos-local-nodes: {nodes_value!r} from {nodes_source} is not "
            "a positive whole number (0 only with --chaos-local-real-nodes)"
        ) from None
    by_name = {o.name: o for o in OPTIONS}
    seed_value, seed_source = raw["seed"]
    seed: int | None = None
    if seed_value is not None:
        try:
            seed = int(seed_value)
        except ValueError:
            raise ChaosConfigError(
                f"--chaos-seed: {seed_value!r} from {seed_source} is not a whole number"
            ) from None
    percent_value, percent_source = raw["max_percent"]
    try:
        max_percent = float(percent_value or "100")
        if not 0 < max_percent <= 100:
            raise ValueError
    except ValueError:
        raise ChaosConfigError(
            f"--chaos-max-percent: {percent_value!r} from {percent_source} "
            "must be a number above 0 and at most 100"
        ) from None
    journal_value = raw["journal"][0]
    journal_append = _as_bool(by_name["journal_append"], *raw["journal_append"])
    append_source = raw["journal_append"][1]
    if journal_append and not journal_value and append_source == by_name["journal_append"].flag:
        raise ChaosConfigError(
            f"{append_source}: appends to the journal, but no journal was given; "
            "add --chaos-journal=PATH (or the ini key chaos_journal)"
        )
    return Settings(
        cluster="local"
        if cluster_value == "local"
        else "kind"
        if cluster_value == "kind"
        else "existing",
        kubeconfig=kubeconfig,
        context=raw["context"][0],
        local_name=raw["local_name"][0] or "local",
        local_nodes=nodes,
        local_pod_ready_delay=_delay(raw["local_pod_ready_delay"]),
        local_real_node=_real_node(raw["local_real_node"]),
        local_real_nodes=real_nodes,
        local_images=_files(raw["local_image"]),
        local_istio=_as_bool(by_name["local_istio"], *raw["local_istio"]),
        allow_namespaces=_as_list(raw["allow_namespace"][0]),
        allow_contexts=_as_list(raw["allow_context"][0]),
        dry_run=_as_bool(by_name["dry_run"], *raw["dry_run"]),
        seed=seed,
        max_percent=max_percent,
        journal=Path(journal_value) if journal_value else None,
        journal_append=journal_append,
        cleanup=_as_bool(by_name["cleanup"], *raw["cleanup"]),
        report=Path(raw["report"][0]) if raw["report"][0] else None,
        notify=_notify_url(raw["notify"], raw["notify_url_file"]),
        notify_on=_notify_on(raw["notify_on"][0]),
        notify_timeout=_duration(by_name["notify_timeout"], raw["notify_timeout"]),
        toolbox_image=raw["toolbox_image"][0] or DEFAULT_TOOLBOX_IMAGE,
        lease_wait=_duration(by_name["lease_wait"], raw["lease_wait"]),
        revert_timeout=_duration(by_name["revert_timeout"], raw["revert_timeout"]),
        kind_name=raw["kind_name"][0] or "pytest-chaos",
        kind_workers=kind_workers,
        kind_image=raw["kind_image"][0] or "",
        kind_keep=_as_bool(by_name["kind_keep"], *raw["kind_keep"]),
    )


def _files(raw: tuple[str | None, str]) -> tuple[Path, ...]:
    value, source = raw
    paths = tuple(Path(part).expanduser() for part in _as_list(value))
    for path in paths:
        if not path.is_file():
            raise ChaosConfigError(
                f"--chaos-local-image: {path} (from {source}) is not a file; give the image "
                "archive `podman save -o FILE IMAGE` (or `docker save`) wrote"
            )
    return paths


def _duration(option: Option, raw: tuple[str | None, str]) -> float:
    from pytest_chaos.durations import as_seconds

    value, source = raw
    try:
        return as_seconds(value or option.default or "0", name=option.flag)
    except ChaosConfigError as exc:
        raise ChaosConfigError(f"{exc} (from {source}; e.g. {option.flag}=90s)") from None


def _real_nodes(raw: tuple[str | None, str]) -> int:
    from pytest_chaos.capacity import check_count, machine_limit

    value, source = raw
    if value is None or not str(value).strip():
        return 0
    return check_count(value, "--chaos-local-real-nodes", source, machine_limit())


def _real_node(raw: tuple[str | None, str]) -> Literal["yes", "no", "auto"]:
    value, source = raw
    choice = (value or "no").lower()
    if choice in ("yes", "true", "1"):
        return "yes"
    if choice in ("no", "false", "0"):
        return "no"
    if choice == "auto":
        return "auto"
    raise ChaosConfigError(
        f"--chaos-local-real-node: {value!r} from {source} must be yes, no or auto"
    )


def _delay(raw: tuple[str | None, str]) -> float:
    from pytest_chaos.durations import as_seconds

    value, source = raw
    try:
        return as_seconds(value or "0", name="--chaos-local-pod-ready-delay")
    except ChaosConfigError as exc:
        raise ChaosConfigError(f"{exc} (from {source})") from None


def _notify_on(value: str | None) -> Literal["failure", "always", "never"]:
    # The choice itself was checked against Option.choices in resolve().
    if value == "always":
        return "always"
    return "never" if value == "never" else "failure"


def _notify_url(raw: tuple[str | None, str], file: tuple[str | None, str]) -> str | None:
    """The webhook URL: given directly, or read from --chaos-notify-url-file."""
    value, source = raw
    path_value, path_source = file
    if value and path_value:
        raise ChaosConfigError(
            f"--chaos-notify-url-file: {path_value!r} from {path_source}, but a URL is also "
            f"given by {source}; give the URL one way only"
        )
    if path_value:
        path = Path(path_value).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ChaosConfigError(
                f"--chaos-notify-url-file: {path} (from {path_source}) cannot be read: "
                f"{exc.strerror or exc}; give a file holding the webhook URL"
            ) from None
        if not value:
            raise ChaosConfigError(
                f"--chaos-notify-url-file: {path} (from {path_source}) is empty; it must hold "
                "the webhook URL"
            )
        source = f"the file {path} (from {path_source})"
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or not urlsplit(value).hostname:
        # Never echo the value: it is meant to be a secret and may be one, mistyped.
        shown = repr(value) if source.startswith("--") else "the value"
        raise ChaosConfigError(
            f"--chaos-notify: {shown} from {source} is not an http(s) URL; give the webhook's "
            "URL, e.g. https://hooks.slack.com/services/..."
        )
    return value
