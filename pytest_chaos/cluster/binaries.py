"""The local cluster's binaries: where they are cached, and how they are built.

Every binary is built from a Go module under ``tools/`` through the Go module proxy (no release
downloads, no container registry). A build lands in a cache directory whose name carries the
component's version and a hash of its ``go.mod``/``go.sum``, so a build happens once per machine
and again only when a version changes. The cold Kubernetes build takes many minutes: it is done by
``pytest-chaos cluster build`` (``make`` runs it), never inside a test.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pytest_chaos.errors import BinaryMissingError, ClusterError

Progress = Callable[[str], None]

_STAMP = ".complete.json"


@dataclass(frozen=True, slots=True)
class Component:
    """One Go module under ``tools/`` and the binaries it builds."""

    name: str
    module_dir: str
    main_module: str
    packages: tuple[str, ...]
    version_stamp: bool = False
    data_only: bool = False

    @property
    def binaries(self) -> tuple[str, ...]:
        """The file names this component puts into its cache directory."""
        if self.data_only:
            return ("istio-crds.yaml",)
        if self.name == "etcd":
            return ("etcd",)
        if self.name == "kind":
            return ("kind",)
        if self.name == "kwok":
            return ("kwok", KWOK_POD_STAGES)
        if self.name == "istio-control":
            return (*(p.rsplit("/", 1)[-1] for p in self.packages), *ISTIO_CONTROL_FILES)
        return tuple(p.rsplit("/", 1)[-1] for p in self.packages)


KUBERNETES = Component(
    name="kubernetes",
    module_dir="k8s",
    main_module="k8s.io/kubernetes",
    packages=tuple(
        f"k8s.io/kubernetes/cmd/{cmd}"
        for cmd in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "kubectl",
        )
    ),
    version_stamp=True,
)
ETCD = Component(
    name="etcd",
    module_dir="etcd",
    main_module="go.etcd.io/etcd/server/v3",
    packages=("go.etcd.io/etcd/server/v3",),
)
KWOK = Component(
    name="kwok",
    module_dir="kwok",
    main_module="sigs.k8s.io/kwok",
    packages=("sigs.k8s.io/kwok/cmd/kwok",),
)
ISTIO_CRDS = Component(
    name="istio-crds",
    module_dir="istio",
    main_module="istio.io/api",
    packages=(),
    data_only=True,
)
REGISTRY = Component(
    name="registry",
    module_dir="registry",
    main_module="github.com/google/go-containerregistry",
    packages=(
        "github.com/pytest-chaos/pytest-chaos/tools/registry/pytest-chaos-registry",
        "github.com/google/go-containerregistry/cmd/crane",
    ),
)
NETWORK_POLICIES = Component(
    name="network-policies",
    module_dir="network-policies",
    main_module="sigs.k8s.io/kube-network-policies",
    packages=(
        "github.com/pytest-chaos/pytest-chaos/tools/network-policies/pytest-chaos-network-policies",
    ),
)
COMPONENTS = (KUBERNETES, ETCD, KWOK, ISTIO_CRDS, REGISTRY, NETWORK_POLICIES)

#: istiod (pilot-discovery) and pilot-agent, from istio.io/istio's 1.31-line pseudo-version (no
#: tagged release is served). Optional: its cold build takes ~11 min and ~2.8 GB RAM, so only
#: ``pytest-chaos cluster build --istio`` builds it (``make test`` does, ``make demo`` does not).
ISTIO_CONTROL = Component(
    name="istio-control",
    module_dir="istio-control",
    main_module="istio.io/istio",
    packages=("istio.io/istio/pilot/cmd/pilot-discovery", "istio.io/istio/pilot/cmd/pilot-agent"),
)
#: kind itself (sigs.k8s.io/kind v0.33.0), for ``--chaos-cluster=kind`` when no kind v0.20+ is on
#: PATH. Optional: ``pytest-chaos cluster build --kind`` builds it (~3.5 min cold).
KIND = Component(
    name="kind",
    module_dir="kind",
    main_module="sigs.k8s.io/kind",
    packages=("sigs.k8s.io/kind",),
)
#: kubeadm from the k8s.io/kubernetes module of the local cluster's binaries: the kind node image
#: needs it. Its own module (tools/kubeadm) and cache directory: the local cluster's is untouched.
KUBEADM = Component(
    name="kubeadm",
    module_dir="kubeadm",
    main_module="k8s.io/kubernetes",
    packages=("k8s.io/kubernetes/cmd/kubeadm",),
    version_stamp=True,
)
#: CoreDNS v1.11.3 (the version kubeadm v1.32 deploys) for the kind node image's cluster DNS.
COREDNS = Component(
    name="coredns",
    module_dir="coredns",
    main_module="github.com/coredns/coredns",
    packages=("github.com/coredns/coredns",),
)
#: local-path-provisioner (v0.0.30) for the kind node image's default StorageClass.
LOCAL_PATH = Component(
    name="local-path",
    module_dir="local-path",
    main_module="github.com/rancher/local-path-provisioner",
    packages=("github.com/rancher/local-path-provisioner",),
)
KIND_COMPONENTS = (KIND, KUBEADM, COREDNS, LOCAL_PATH)
OPTIONAL_COMPONENTS = (ISTIO_CONTROL, *KIND_COMPONENTS)

#: The Istio CRDs the local cluster installs (taken from istio.io/api's generated file).
ISTIO_CRD_NAMES = (
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
)

BUILD_COMMAND = "pytest-chaos cluster build"

#: Files istio-control takes from istio.io/istio at build time: every Istio CRD of istiod's own
#: line (ServiceEntry included), and pilot-agent's Envoy bootstrap template.
ISTIO_CONTROL_CRDS = "istio-crds-all.yaml"
ISTIO_CONTROL_BOOTSTRAP = "envoy_bootstrap_tmpl.json"
ISTIO_CONTROL_FILES = (ISTIO_CONTROL_CRDS, ISTIO_CONTROL_BOOTSTRAP)

#: kwok's own "fast" pod stages, taken from its module at build time; a local cluster started
#: with a pod readiness delay runs them with a delay added to the pod-ready stage.
KWOK_POD_STAGES = "kwok-pod-stages.yaml"


def tools_dir() -> Path:
    """The directory holding the Go tools modules (the source tree's, else the wheel's copy)."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir.parent / "tools", package_dir / "_tools"):
        if (candidate / "k8s" / "go.mod").is_file():
            return candidate
    raise ClusterError(
        f"the Go tools modules are missing (looked in {package_dir.parent / 'tools'} and "
        f"{package_dir / '_tools'}); reinstall pytest-chaos"
    )


def cache_root() -> Path:
    """Where built binaries are cached: ``$PYTEST_CHAOS_CACHE_DIR`` or the user cache dir."""
    explicit = os.environ.get("PYTEST_CHAOS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "pytest-chaos"


def module_version(component: Component, tools: Path | None = None) -> str:
    """The version of the component's main module, read from its ``go.mod``."""
    gomod = ((tools or tools_dir()) / component.module_dir / "go.mod").read_text()
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(component.main_module)}\s+(v\S+)", gomod, re.MULTILINE
    )
    if not match:
        raise ClusterError(
            f"{component.module_dir}/go.mod does not require {component.main_module}"
        )
    return match.group(1)


def cache_key(component: Component, tools: Path | None = None) -> str:
    """Directory name for a component's build: version plus a hash of its module's files.

    The hash covers go.mod, go.sum, tools.go and the Go sources of the module's own commands
    (``tools/registry/pytest-chaos-registry/main.go``...), so an edited command is rebuilt.
    """
    base = (tools or tools_dir()) / component.module_dir
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "tools.go"):
        path = base / name
        if path.is_file():
            digest.update(path.read_bytes())
    for source in sorted(base.glob("*/**/*.go")):  # the commands' packages, not tools.go
        digest.update(source.relative_to(base).as_posix().encode() + b"\0")
        digest.update(source.read_bytes())
    return f"{component.name}-{module_version(component, tools)}-{digest.hexdigest()[:10]}"


def component_dir(component: Component) -> Path:
    """The cache directory of a component (it may not have been built yet)."""
    return cache_root() / cache_key(component)


def is_built(component: Component) -> bool:
    """True when the component's cache directory holds a completed build."""
    directory = component_dir(component)
    return (directory / _STAMP).is_file() and all(
        (directory / name).is_file() for name in component.binaries
    )


def binary(name: str) -> Path:
    """Path of one built binary or data file, or an error saying how to build it."""
    for component in (*COMPONENTS, *OPTIONAL_COMPONENTS):
        if name in component.binaries:
            path = component_dir(component) / name
            if not is_built(component) or not path.is_file():
                if component in KIND_COMPONENTS:
                    command, target = f"{BUILD_COMMAND} --kind", "kind-binaries"
                elif component in OPTIONAL_COMPONENTS:
                    command, target = f"{BUILD_COMMAND} --istio", "istio-binaries"
                else:
                    command, target = BUILD_COMMAND, "cluster-binaries"
                raise BinaryMissingError(
                    f"{name} ({component.name} {module_version(component)}) is not built in "
                    f"{component_dir(component)}; build it with `{command}` (or `make "
                    f"{target}`; the first build takes many minutes)"
                )
            return path
    raise KeyError(name)


def check_runs(path: Path, *args: str) -> str:
    """Run ``path --version``-like args and return the output, or raise naming the binary."""
    try:
        result = subprocess.run(
            [str(path), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise BinaryMissingError(
            f"{path} does not run ({exc}); rebuild it with `{BUILD_COMMAND} --force`"
        ) from exc
    if result.returncode != 0:
        raise BinaryMissingError(
            f"{path} {' '.join(args)} exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}; rebuild it with "
            f"`{BUILD_COMMAND} --force`"
        )
    return result.stdout + result.stderr


# --------------------------------------------------------------------------- building


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ClusterError(
            "Go is needed to build the local cluster's binaries and was not found on PATH: "
            "install Go 1.23 or newer (https://go.dev/doc/install), then run "
            f"`{BUILD_COMMAND}`"
        )
    return go


def _go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOWORK": "off", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"})
    env.update(extra or {})
    return env


def run_go(args: list[str], cwd: Path, *, what: str) -> str:
    """Run ``go args`` in cwd (GOWORK off, no cgo); raise ClusterError naming what failed."""
    result = subprocess.run(
        [_go(), *args], cwd=cwd, env=_go_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = result.stderr.strip()[-2000:]
        hint = ""
        if re.search(r"proxy|dial tcp|no such host|i/o timeout|403|404|410", detail):
            proxy = os.environ.get("GOPROXY") or "the default https://proxy.golang.org"
            hint = (
                f"\nThe Go module proxy ({proxy}) is unreachable or lacks a module: the "
                "build needs it (set GOPROXY to a reachable proxy)."
            )
        raise ClusterError(f"{what} failed in {cwd}:\n{detail}{hint}")
    return result.stdout


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ldflags(version: str) -> str:
    match = re.match(r"v(\d+)\.(\d+)\.", version)
    major, minor = (match.group(1), match.group(2)) if match else ("", "")
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": "0000000000000000000000000000000000000000",
        "buildDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    packages = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    flags = [f"-X {pkg}.{key}={value}" for key, value in stamp.items() for pkg in packages]
    return " ".join(["-s", "-w", *flags])


def _build_go(component: Component, source: Path, out: Path, progress: Progress) -> None:
    progress(f"{component.name}: downloading modules through the Go module proxy")
    run_go(["mod", "download"], source, what=f"go mod download ({component.name})")
    deps = run_go(
        ["list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", *component.packages],
        source,
        what=f"go list ({component.name})",
    )
    total = sum(1 for line in deps.splitlines() if line.strip())
    args = ["build", "-v", "-trimpath", "-o", str(out) + "/"]
    if component.version_stamp:
        args += ["-tags=selinux,notest", f"-ldflags={_ldflags(module_version(component))}"]
    else:
        args += ["-ldflags=-s -w"]
    args += list(component.packages)
    progress(
        f"{component.name}: compiling {total} packages (go build; cached packages are skipped)"
    )
    proc = subprocess.Popen(
        [_go(), *args],
        cwd=source,
        env=_go_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    compiled = 0
    last_report = time.monotonic()
    for line in proc.stdout:
        tail = [*tail[-40:], line.rstrip()]
        if not line.startswith((" ", "#", "go:")):
            compiled += 1
        if time.monotonic() - last_report >= 20:
            last_report = time.monotonic()
            progress(f"{component.name}: {compiled}/{total} packages compiled")
    if proc.wait() != 0:
        raise ClusterError(f"go build ({component.name}) failed in {source}:\n" + "\n".join(tail))
    if component.name == "kwok":
        _extract_kwok_stages(source, out)
    if component.name == "istio-control":
        _extract_istio_control_files(source, out)
    if component.name == "etcd":
        # go names a binary built from ".../server/v3" after the element before "/v3".
        for built_name in ("server", "v3"):
            if (out / built_name).is_file():
                (out / built_name).rename(out / "etcd")


def _extract_kwok_stages(source: Path, out: Path) -> None:
    import yaml

    info = json.loads(
        run_go(["list", "-m", "-json", KWOK.main_module], source, what="go list (kwok)")
    )
    stage_dir = Path(info["Dir"]) / "kustomize" / "stage" / "pod" / "fast"
    documents = []
    for name in ("pod-ready.yaml", "pod-complete.yaml", "pod-delete.yaml"):
        documents += [d for d in yaml.safe_load_all((stage_dir / name).read_text()) if d]
    (out / KWOK_POD_STAGES).write_text(yaml.safe_dump_all(documents, sort_keys=False))


def _extract_istio_control_files(source: Path, out: Path) -> None:
    import yaml

    info = json.loads(
        run_go(["list", "-m", "-json", ISTIO_CONTROL.main_module], source, what="go list (istio)")
    )
    module = Path(info["Dir"])
    crd_file = module / "manifests" / "charts" / "base" / "files" / "crd-all.gen.yaml"
    documents = [d for d in yaml.safe_load_all(crd_file.read_text()) if d]
    served = {
        d["metadata"]["name"]: {v["name"] for v in d["spec"]["versions"] if v.get("served")}
        for d in documents
    }
    for name in ISTIO_CRD_NAMES:
        if not {"v1", "v1beta1", "v1alpha3"} <= served.get(name, set()):
            raise ClusterError(f"{crd_file}: {name} does not serve v1, v1beta1 and v1alpha3")
    (out / ISTIO_CONTROL_CRDS).write_text(yaml.safe_dump_all(documents, sort_keys=False))
    shutil.copyfile(
        module / "tools" / "packaging" / "common" / "envoy_bootstrap.json",
        out / ISTIO_CONTROL_BOOTSTRAP,
    )


def _extract_istio_crds(component: Component, source: Path, out: Path, progress: Progress) -> None:
    import yaml

    progress(f"{component.name}: downloading istio.io/api through the Go module proxy")
    info = json.loads(
        run_go(
            ["mod", "download", "-json", component.main_module],
            source,
            what="go mod download (istio.io/api)",
        )
    )
    crd_file = Path(info["Dir"]) / "kubernetes" / "customresourcedefinitions.gen.yaml"
    documents = [d for d in yaml.safe_load_all(crd_file.read_text()) if d]
    wanted = [d for d in documents if d["metadata"]["name"] in ISTIO_CRD_NAMES]
    if len(wanted) != len(ISTIO_CRD_NAMES):
        raise ClusterError(f"{crd_file} lacks some of {', '.join(ISTIO_CRD_NAMES)}")
    (out / "istio-crds.yaml").write_text(yaml.safe_dump_all(wanted, sort_keys=False))


def build(component: Component, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Build one component into its cache directory (a no-op when already built)."""
    say = progress or (lambda message: print(message, file=sys.stderr))  # noqa: T201
    target = component_dir(component)
    with _build_lock():
        if is_built(component) and not force:
            return target
        source = tools_dir() / component.module_dir
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        started = time.monotonic()
        if component.data_only:
            _extract_istio_crds(component, source, staging, say)
        else:
            _build_go(component, source, staging, say)
        seconds = round(time.monotonic() - started, 1)
        stamp = {
            "component": component.name,
            "version": module_version(component),
            "seconds": seconds,
            "built": datetime.now(UTC).isoformat(),
        }
        (staging / _STAMP).write_text(json.dumps(stamp, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        say(f"{component.name} {module_version(component)}: built in {seconds}s -> {target}")
        return target


def build_all(*, force: bool = False, progress: Progress | None = None) -> dict[str, Path]:
    """Build every component the local cluster needs; return their cache directories."""
    return {c.name: build(c, force=force, progress=progress) for c in COMPONENTS}
