#!/usr/bin/env bash
# Installs the Debian packages pytest-chaos needs, only when one is missing.
# (Go, for building the local cluster's binaries, is handled by install-go.sh.)
#
# Two groups: what every run needs, and what the local cluster's real node needs (a container
# runtime, CNI plugins, iptables, the commands the toolbox image is made of, and podman, which
# builds and saves users' images for load-image, the registry and the per-PR gate; mmdebstrap,
# the kind node image's Debian rootfs). Without root
# the real-node group is only reported: the real node needs root anyway, and its tests skip
# with the reason.
set -euo pipefail

need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v git >/dev/null || need+=(git)
command -v make >/dev/null || need+=(make)

real_node=()
for pair in containerd:containerd runc:runc conntrack:conntrack iptables:iptables \
  stress-ng:stress-ng pkill:procps ip:iproute2 curl:curl nsenter:util-linux killall:psmisc \
  podman:podman mmdebstrap:mmdebstrap; do
  command -v "${pair%%:*}" >/dev/null || real_node+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || real_node+=(containernetworking-plugins)
# kind on podman: netavark and aardvark-dns, so node containers resolve each other by name.
[ -x /usr/lib/podman/netavark ] || real_node+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || real_node+=(aardvark-dns)

if [ "$(id -u)" != 0 ]; then
  if ((${#need[@]})); then
    echo "missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  if ((${#real_node[@]})); then
    echo "note: the local cluster's real node needs root and: ${real_node[*]}" >&2
  fi
  exit 0
fi

all=("${need[@]}" "${real_node[@]}")
if ((${#all[@]})); then
  echo "installing Debian packages: ${all[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${all[@]}"
fi
