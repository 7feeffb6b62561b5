#!/usr/bin/env bash
# Installs the system packages Ferry's tests use, when they are missing.
# iproute2 gives `ip` for the network-namespace tests; haproxy is the peer
# the benchmark harness (internal/tooling/benchpeer) measures Ferry against;
# podman runs the images in internal/tooling/images' test, with runc (crun,
# podman's default runtime, refuses a hybrid cgroup v1 host).
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
# haproxy has its own script: its package must not start a system service.
bash "$(dirname "$0")/install-bench-deps.sh" >/dev/null
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${need[*]}; install them (Debian: sudo apt-get install ${need[*]})" >&2
	# The tests that need these need root too, and say so when they skip;
	# only iproute2 is needed to run the rest.
	case " ${need[*]} " in *" iproute2 "*) exit 1 ;; esac
	exit 0
fi
echo "deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
