"""Users' images: load-image of a 50 MiB archive, and push to the local registry -> pullable.

(a) ``load_archives`` of a 50 MiB OCI archive (one uncompressed layer of random bytes, so
    nothing compresses it away) into every real node of the cluster, from the call to every
    node's containerd listing it unpacked; a fresh reference each round. Skipped when the
    cluster has no real node.
(b) push -> pullable: ``crane push`` of the same image as a docker-archive to the cluster's
    registry, then a puller's reads (the manifest, then every blob) until the last byte.

Usage: python benchmarks/images.py --name CLUSTER [--rounds 5] [--mib 50] [--json FILE]
(the cluster must be up: ``pytest-chaos cluster up [--real-node] --name CLUSTER``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.output import publish
from pytest_chaos.cluster import binaries, images
from pytest_chaos.cluster.image_load import load_archives
from pytest_chaos.cluster.local import LocalCluster
from pytest_chaos.cluster.node_runtimes import node_runtimes


def layer(mib: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = os.urandom(mib * 2**20)
        info = tarfile.TarInfo("payload")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def docker_archive(path: Path, reference: str, data: bytes) -> None:
    import hashlib

    diff = "sha256:" + hashlib.sha256(data).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": ["l/layer.tar"]}]
    with tarfile.open(path, mode="w") as tar:
        for name, blob in (
            ("manifest.json", json.dumps(manifest).encode()),
            (config_name, config),
            ("l/layer.tar", data),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def pull(port: int, repository: str, tag: str) -> int:
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        document = json.loads(reply.read())
    total = 0
    for blob in [document["config"], *document["layers"]]:
        url = f"http://127.0.0.1:{port}/v2/{repository}/blobs/{blob['digest']}"
        with urllib.request.urlopen(url, timeout=60) as reply:
            total += len(reply.read())
    return total


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "min_s": round(min(values), 2),
        "median_s": round(statistics.median(values), 2),
        "max_s": round(max(values), 2),
        "n": len(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--nodes-of",
        type=Path,
        help="load into the real nodes of this state dir instead (e.g. a standalone containerd "
        "laid out as <dir>/realnode/containerd/containerd.sock)",
    )
    args = parser.parse_args()
    cluster = LocalCluster(args.name)
    data = layer(args.mib)
    load_dir = args.nodes_of or cluster.state_dir
    nodes = node_runtimes(load_dir)
    loads: list[float] = []
    pushes: list[float] = []
    address = cluster.registry_address()
    crane = binaries.component_dir(binaries.REGISTRY) / "crane"
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            if nodes:
                reference = f"localhost/bench-load:r{round_}-{os.getpid()}"
                oci = Path(tmp) / "oci.tar"
                oci.write_bytes(images.oci_archive(reference, data, entrypoint=["/payload"]))
                result = load_archives(load_dir, [oci])
                loads.append(result.seconds)
                for node in nodes:
                    images.ctr(node.containerd_socket, "images", "remove", reference)
            if address:
                port = int(address.rsplit(":", 1)[1])
                archive = Path(tmp) / "docker.tar"
                docker_archive(archive, f"bench-push:r{round_}", data)
                started = time.monotonic()
                subprocess.run(
                    [str(crane), "push", "--insecure", str(archive),
                     f"{address}/bench-push:r{round_}"],
                    check=True, capture_output=True, timeout=300,
                )  # fmt: skip
                pulled = pull(port, "bench-push", f"r{round_}")
                pushes.append(time.monotonic() - started)
                assert pulled >= args.mib * 2**20, pulled
    results: dict[str, Any] = {"archive_mib": args.mib, "real_nodes": len(nodes)}
    results["registry"] = address
    if loads:
        results[f"load_into_{len(nodes)}_nodes"] = summary(loads)
    if pushes:
        results["push_to_pulled"] = summary(pushes)
    return publish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
