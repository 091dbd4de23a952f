#!/usr/bin/env bash
# Prints the directory of a Go toolchain (1.23 or newer) to build the local cluster with: the one
# on PATH when it is new enough, else one installed from the Go module proxy (module
# golang.org/toolchain, the source GOTOOLCHAIN uses) into the per-user cache.
set -euo pipefail

if command -v go >/dev/null 2>&1; then
  have="$(go env GOVERSION 2>/dev/null || true)"
  minor="$(echo "$have" | sed -nE 's/^go1\.([0-9]+).*/\1/p')"
  if [ -n "$minor" ] && [ "$minor" -ge 23 ]; then
    dirname "$(command -v go)"
    exit 0
  fi
  echo "install-go: $have on PATH is older than go1.23; installing one for pytest-chaos" >&2
fi

version="${PYTEST_CHAOS_GO_VERSION:-1.24.13}"
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-go: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
cache="${PYTEST_CHAOS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pytest-chaos}"
dest="$cache/go-$version"
if [ -x "$dest/bin/go" ]; then
  echo "$dest/bin"
  exit 0
fi
proxy="${GOPROXY:-https://proxy.golang.org}"
proxy="${proxy%%,*}"
module="v0.0.1-go$version.linux-$arch"
url="$proxy/golang.org/toolchain/@v/$module.zip"
echo "install-go: downloading Go $version from the Go module proxy ($url)" >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! python3 - "$url" "$tmp/go.zip" <<'PY'
import sys, urllib.request
urllib.request.urlretrieve(sys.argv[1], sys.argv[2])
PY
then
  echo "install-go: the Go module proxy ($proxy) is unreachable; Go is needed to build the" >&2
  echo "local cluster's binaries: install Go 1.23+ or set GOPROXY to a reachable proxy" >&2
  exit 1
fi
python3 - "$tmp/go.zip" "$tmp/x" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        path = archive.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
mkdir -p "$cache"
rm -rf "$dest"
mv "$tmp/x/golang.org/toolchain@$module" "$dest"
chmod +x "$dest/bin/"* "$dest/pkg/tool/"*/* 2>/dev/null || true
echo "$dest/bin"
