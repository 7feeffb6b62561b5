#!/usr/bin/env bash
# Installs the system packages Ferry's tests use, when they are missing.
# iproute2 gives `ip` for the network-namespace tests; haproxy is the peer
# the benchmark harness (internal/tooling/benchpeer) measures Ferry against.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# haproxy has its own script: its package must not start a system service.
bash "$(dirname "$0")/install-bench-deps.sh" >/dev/null
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${need[*]}; install them (Debian: sudo apt-get install ${need[*]})" >&2
	exit 1
fi
echo "deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
