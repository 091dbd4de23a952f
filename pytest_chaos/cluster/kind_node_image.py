"""The kind node image, assembled on this machine: no registry, no ``kindest/base``.

``kind build node-image`` cannot work offline (it pulls ``kindest/base`` and the etcd, coredns
and pause images, and hard-codes docker), so :func:`build` does by hand what its builder does,
with what this machine can get (measured recipe: ``docs/kind.md``):

1. a Debian bookworm rootfs from ``mmdebstrap`` (the host's apt sources) with systemd,
   containerd, runc, the CNI plugins and iptables — kind's base image, made from packages;
2. kind's own node files (entrypoint, systemd units, containerd config) taken from the kind
   module (``sigs.k8s.io/kind`` v0.33.0) in the Go module cache, with
   ``restrict_oom_score_adj = true`` (no CAP_SYS_RESOURCE here) and the base runtime spec
   kind's base image generates with ``ctr oci spec``;
3. kubeadm, kubelet and kubectl from the local cluster's build (kubeadm from ``tools/kubeadm``);
4. the images kubeadm and the node need, preloaded into the node's containerd: kube-apiserver,
   kube-controller-manager, kube-scheduler and etcd as one-binary images, kube-proxy with the
   toolbox's iptables, CoreDNS (``tools/coredns``) and our pause, all under the names kubeadm
   v1.32 asks for (``registry.k8s.io/...``), so nothing is pulled.

The result is ``localhost/pytest-chaos/kind-node:v1.32.5`` in the engine (podman or docker),
labelled with a hash of every input: a build runs again only when one of them changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_chaos.cluster import binaries, images
from pytest_chaos.cluster.kind import DEFAULT_NODE_IMAGE, Kind
from pytest_chaos.errors import ClusterError

Progress = Callable[[str], None]

#: Bumped whenever the recipe changes (part of the image's input hash).
RECIPE_VERSION = "2"
KUBERNETES_VERSION = "v1.32.5"
#: The image this builds: the kind provider's default node image.
NODE_IMAGE = DEFAULT_NODE_IMAGE
#: The label carrying the hash of the inputs an image was built from.
INPUTS_LABEL = "dev.pytest-chaos.kind-node.inputs"
#: Besides, our toolbox and demo images are preloaded (faults and examples run offline).
#: What kubeadm v1.32.5 runs (``kubeadm config images list``) and the sandbox kind's containerd
#: config names; etcd is our v3.5.21 under the tag kubeadm expects.
KUBEADM_IMAGES = {
    "kube-apiserver": f"registry.k8s.io/kube-apiserver:{KUBERNETES_VERSION}",
    "kube-controller-manager": f"registry.k8s.io/kube-controller-manager:{KUBERNETES_VERSION}",
    "kube-scheduler": f"registry.k8s.io/kube-scheduler:{KUBERNETES_VERSION}",
    "kube-proxy": f"registry.k8s.io/kube-proxy:{KUBERNETES_VERSION}",
    "etcd": "registry.k8s.io/etcd:3.5.16-0",
    "coredns": "registry.k8s.io/coredns/coredns:v1.11.3",
    "pause": "registry.k8s.io/pause:3.10",
}
#: The default StorageClass's provisioner, preloaded (kind applies /kind/manifests/default-storage).
STORAGE_IMAGE = "localhost/pytest-chaos/local-path-provisioner:v0.0.30"
#: The node's Debian packages (kind's base image installs the same set, less NFS/iSCSI/fuse).
ROOTFS_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
    "iptables", "nftables", "conntrack", "iproute2", "ethtool", "util-linux", "mount", "kmod",
    "libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps", "e2fsprogs",
    "socat",
)  # fmt: skip
SUITE = "bookworm"
#: Host commands the build needs, with the Debian package of each.
BUILD_COMMANDS = {"mmdebstrap": "mmdebstrap", "ctr": "containerd"}

#: The pod network, written at every boot before the kubelet starts (kindnetd is not built
#: here): a bridge on the node's own /24 of 10.244.0.0/16, numbered after the node's address
#: (node 10.89.0.3 -> pods 10.244.3.0/24), routes to every other node's /24 through that node
#: on the kind network, and masquerading for traffic that leaves the pod network.
CNI_SCRIPT = r"""#!/bin/bash
set -euo pipefail
address=$(ip -4 -o addr show dev eth0 | awk '{print $4}' | head -n 1)
ip=${address%/*}
own=${ip##*.}
prefix=${ip%.*}
mkdir -p /etc/cni/net.d
cat > /etc/cni/net.d/10-pytest-chaos.conflist <<CONFLIST
{"cniVersion": "0.4.0", "name": "pytest-chaos", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.${own}.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
CONFLIST
for peer in $(seq 1 254); do
  [ "$peer" = "$own" ] && continue
  ip route replace "10.244.${peer}.0/24" via "${prefix}.${peer}" dev eth0 onlink
done
rule=(POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE)
iptables -t nat -C "${rule[@]}" 2>/dev/null || iptables -t nat -A "${rule[@]}"
"""
CNI_UNIT = """[Unit]
Description=pytest-chaos: the node's pod network (bridge, routes to the other nodes)
Before=kubelet.service containerd.service
After=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/kind/bin/pytest-chaos-cni.sh

[Install]
WantedBy=multi-user.target
"""

#: Run inside the image being built (``RUN``): kind's base-image steps, then the image preload.
_SETUP = r"""set -euo pipefail
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /usr/lib/systemd/systemd /sbin/init
ln -sf /usr/bin/containerd /usr/local/bin/containerd
chmod 0755 /usr/local/bin/* /kind/bin/* /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl
systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
  pytest-chaos-cni.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests /opt/cni/bin
for plugin in /usr/lib/cni/*; do ln -sf "$plugin" /opt/cni/bin/; done
containerd --log-level error --root /var/lib/containerd --state /run/containerd-build \
  --address /run/containerd-build/containerd.sock &
pid=$!
for _ in $(seq 200); do [ -S /run/containerd-build/containerd.sock ] && break; sleep 0.05; done
for archive in /kind/images/*.tar; do
  ctr --address /run/containerd-build/containerd.sock -n k8s.io images import \
    --all-platforms --no-unpack --digests "$archive"
done
ctr --address /run/containerd-build/containerd.sock -n k8s.io images list -q
kill "$pid"; wait "$pid" || true
rm -rf /kind/images /run/containerd-build
"""


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What :func:`build` did: the image, its input hash, and whether it was already there."""

    image: str
    inputs: str
    cached: bool
    seconds: float


def missing_commands() -> dict[str, str]:
    """The host commands the build needs and lacks -> the Debian package that has each."""
    return {cmd: pkg for cmd, pkg in BUILD_COMMANDS.items() if shutil.which(cmd) is None}


@functools.cache
def kind_module_dir() -> Path:
    """The kind module's source in the Go module cache (``tools/kind``'s version)."""
    source = binaries.tools_dir() / binaries.KIND.module_dir
    info = json.loads(
        binaries.run_go(
            ["mod", "download", "-json", binaries.KIND.main_module],
            source,
            what="go mod download (sigs.k8s.io/kind)",
        )
    )
    return Path(info["Dir"])


def _component_keys() -> list[str]:
    return [
        binaries.cache_key(c)
        for c in (
            binaries.KUBERNETES,
            binaries.ETCD,
            binaries.KUBEADM,
            binaries.COREDNS,
            binaries.LOCAL_PATH,
        )
    ]


def inputs_hash() -> str:
    """A hash of every input: recipe, packages, kind's version, binaries, images' sources."""
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION}\n{SUITE} {ROOTFS_PACKAGES}\n".encode())
    digest.update(binaries.module_version(binaries.KIND).encode())
    for key in _component_keys():
        digest.update(f"\n{key}".encode())
    digest.update(f"\n{images.cache_key()}\n{_SETUP}\n{CNI_SCRIPT}\n{CNI_UNIT}".encode())
    return digest.hexdigest()[:16]


def built_inputs(engine: str, image: str = NODE_IMAGE) -> str | None:
    """The input hash the engine's image was built from, or None when it has no such image."""
    result = subprocess.run(
        [engine, "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout.strip() or "null") or {}
    value = labels.get(INPUTS_LABEL)
    return str(value) if value else None


def _run(argv: list[str], *, what: str, timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what}: `{' '.join(argv)}` took over {timeout:.0f}s") from exc
    if result.returncode != 0:
        raise ClusterError(
            f"{what}: `{' '.join(argv[:4])} ...` exited with {result.returncode}:\n"
            + (result.stderr or result.stdout).strip()[-2000:]
        )
    return result.stdout


def _rootfs(out: Path, say: Progress) -> Path:
    """Mmdebstrap's rootfs tar (bookworm minbase plus the node's packages)."""
    say(f"kind node image: Debian {SUITE} rootfs (mmdebstrap, ~1 min)")
    target = out / "rootfs.tar"
    _run(
        [
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--format=tar",
            "--quiet",
            f"--include={','.join(ROOTFS_PACKAGES)}",
            SUITE,
            str(target),
        ],
        what="mmdebstrap",
        timeout=1200,
    )
    return target


def cri_base_spec() -> str:
    """Kind's base runtime spec: ``ctr oci spec`` with its product-files hook, no rlimits."""
    spec = json.loads(_run(["ctr", "oci", "spec"], what="ctr oci spec", timeout=60))
    hooks = spec.setdefault("hooks", {})
    hooks.setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return json.dumps(spec, indent=2)


def _kind_files(context: Path) -> None:
    """Kind's node files into the build context, with the changes this machine needs."""
    source = kind_module_dir() / "images" / "base" / "files"
    shutil.copytree(source, context, dirs_exist_ok=True)
    for path in context.rglob("*"):  # the module cache is read-only
        path.chmod(0o755 if path.is_dir() else (path.stat().st_mode | 0o644) & 0o755)
    config = context / "etc" / "containerd" / "config.toml"
    text = config.read_text()
    if "restrict_oom_score_adj = false" not in text:
        raise ClusterError(f"{source}: containerd's config has no restrict_oom_score_adj")
    config.write_text(
        text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
    )
    (context / "etc" / "containerd" / "cri-base.json").write_text(cri_base_spec())
    (context / "kind" / "version").write_text(KUBERNETES_VERSION)
    manifests = context / "kind" / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "default-storage.yaml").write_text(storage_manifest())
    script = context / "kind" / "bin" / "pytest-chaos-cni.sh"
    script.write_text(CNI_SCRIPT)
    script.chmod(0o755)
    (context / "etc" / "systemd" / "system" / "pytest-chaos-cni.service").write_text(CNI_UNIT)


def storage_manifest() -> str:
    """The local-path manifest kind ships (``const_storage.go``), with our images in it.

    The provisioner is ours (built from ``tools/local-path``); its helper pods, which only run
    ``mkdir`` and ``rm`` in a shell, use the toolbox image.
    """
    source = kind_module_dir() / "pkg" / "build" / "nodeimage" / "const_storage.go"
    text = source.read_text()
    start = text.find("const defaultStorageManifest = `")
    if start < 0:
        raise ClusterError(f"{source}: no defaultStorageManifest (kind changed its layout)")
    body = text[start + len("const defaultStorageManifest = `") :]
    body = body.replace("` + storageProvisionerImage + `", STORAGE_IMAGE)
    body = body.replace("` + storageHelperImage + `", images.TOOLBOX_IMAGE)
    end = body.find("`")
    if end < 0 or "storageProvisionerImage" in body[:end] or "storageHelperImage" in body[:end]:
        raise ClusterError(f"{source}: the storage manifest is not where it was expected")
    return body[:end].lstrip("\n")


def _one_binary_image(reference: str, binary: Path, *, at: str | None = None) -> bytes:
    """An image of one static binary: at /usr/local/bin/NAME (on PATH), or at ``at``."""
    path = at or f"/usr/local/bin/{binary.name}"
    layer = images.Layer()
    layer.add_file(path, binary)
    for directory in ("tmp", "etc", "proc", "sys", "dev", "var/run"):
        layer.add_dir(directory)
    return images.oci_archive(reference, layer.tar_bytes(), entrypoint=[path])


def _root_binary_image(reference: str, binary: Path) -> bytes:
    """CoreDNS and pause: their manifests run ``/coredns`` and ``/pause``."""
    return _one_binary_image(reference, binary, at=f"/{binary.name}")


def _node_images(directory: Path, say: Progress) -> None:
    """The images kubeadm and the node run, as OCI archives under their kubeadm names."""
    say("kind node image: control-plane, etcd, coredns, kube-proxy and pause images")
    directory.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        archive = _one_binary_image(KUBEADM_IMAGES[name], binaries.binary(name))
        (directory / f"{name}.tar").write_bytes(archive)
    coredns = _root_binary_image(KUBEADM_IMAGES["coredns"], binaries.binary("coredns"))
    (directory / "coredns.tar").write_bytes(coredns)
    proxy = images.toolbox_layer()  # iptables, ip6tables and their libraries
    proxy.add_file("usr/local/bin/kube-proxy", binaries.binary("kube-proxy"))
    (directory / "kube-proxy.tar").write_bytes(
        images.oci_archive(
            KUBEADM_IMAGES["kube-proxy"],
            proxy.tar_bytes(),
            entrypoint=["/usr/local/bin/kube-proxy"],
        )
    )
    provisioner = _one_binary_image(STORAGE_IMAGE, binaries.binary("local-path-provisioner"))
    (directory / "local-path-provisioner.tar").write_bytes(provisioner)
    ours = images.build(progress=say).archives  # the toolbox faults run, and the demo app
    for reference in (images.TOOLBOX_IMAGE, images.DEMO_IMAGE):
        shutil.copyfile(ours[reference], directory / ours[reference].name)
    with tempfile.TemporaryDirectory() as tmp:
        pause = images.go_build(images.sources_dir() / "pause", Path(tmp) / "pause")
        (directory / "pause.tar").write_bytes(_root_binary_image(KUBEADM_IMAGES["pause"], pause))


def _containerfile(base: str, inputs: str) -> str:
    return "\n".join(
        [
            f"FROM {base}",
            "COPY files/ /",
            "COPY setup.sh /kind/build-setup.sh",
            "RUN bash /kind/build-setup.sh && rm /kind/build-setup.sh",
            "ENV container=docker",
            "STOPSIGNAL SIGRTMIN+3",
            'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
            f'LABEL {INPUTS_LABEL}="{inputs}"',
            "",
        ]
    )


def build(engine: str, *, force: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build :data:`NODE_IMAGE` into the engine (a no-op when it has one of the same inputs)."""
    say = progress or (lambda _message: None)
    missing = missing_commands()
    if missing:
        raise ClusterError(
            f"building the kind node image needs {', '.join(missing)}: "
            f"apt-get install -y {' '.join(sorted(set(missing.values())))}"
        )
    inputs = inputs_hash()
    if not force and built_inputs(engine) == inputs:
        return BuildResult(NODE_IMAGE, inputs, cached=True, seconds=0.0)
    started = time.monotonic()
    root = binaries.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".kind-node-", dir=root))
    env = Kind.engine_env(engine)
    base = f"localhost/pytest-chaos/kind-node-rootfs:{inputs}"
    try:
        context = work / "context"
        files = context / "files"
        files.mkdir(parents=True)
        rootfs = _rootfs(work, say)
        say(f"kind node image: importing the rootfs into {engine}")
        _run([engine, "import", str(rootfs), base], what=f"{engine} import", timeout=600, env=env)
        rootfs.unlink()
        _kind_files(files)
        for name in ("kubeadm", "kubelet", "kubectl"):
            target = files / "usr" / "bin" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(binaries.binary(name), target)
        _node_images(files / "kind" / "images", say)
        (context / "setup.sh").write_text(_SETUP)
        (context / "Containerfile").write_text(_containerfile(base, inputs))
        say(f"kind node image: {engine} build (preloading the images into containerd)")
        _run(
            [
                engine,
                "build",
                "--network=none",
                "-t",
                NODE_IMAGE,
                "-f",
                str(context / "Containerfile"),
                str(context),
            ],
            what=f"{engine} build",
            timeout=1200,
            env=env,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(
            [engine, "rmi", "--force", base], capture_output=True, timeout=120, check=False, env=env
        )
    seconds = time.monotonic() - started
    say(f"kind node image: {NODE_IMAGE} built in {seconds:.0f}s")
    return BuildResult(NODE_IMAGE, inputs, cached=False, seconds=seconds)
