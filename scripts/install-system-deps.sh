#!/usr/bin/env bash
# Installs the Debian packages pytest-chaos needs, only when one is missing.
# The local cluster needs Go (>= 1.23) to build its binaries; Debian 12's golang-go is too old,
# so Go itself must come with the machine (https://go.dev/doc/install).
set -euo pipefail

need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v git >/dev/null || need+=(git)
command -v make >/dev/null || need+=(make)

if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

if ! command -v go >/dev/null; then
  echo "Go 1.23 or newer is needed to build the local cluster's binaries and is not on PATH." >&2
  echo "Install it from https://go.dev/doc/install (Debian 12's golang-go is too old)." >&2
  exit 1
fi
