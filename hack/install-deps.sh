#!/usr/bin/env bash
# Installs the Debian packages a make target needs, when they are missing.
#
#   hack/install-deps.sh          # the demo and sandbox: iproute2 (`ip`)
#   hack/install-deps.sh test     # also what the tests use: haproxy, the
#                                 # peer the benchmark harness measures
#                                 # Ferry against, and podman with runc and
#                                 # netavark, which run the images
#
# The demo needs no more than `ip`, so a first `make demo` does not wait on
# (or fail in) installs only the tests use. runc, not crun (podman's
# default), because crun refuses a host with hybrid cgroup v1; netavark,
# because podman will not start without a network backend even when every
# container runs with --network host or none. Recommended packages are left
# out: nothing here needs them.
set -euo pipefail
set_name=${1:-demo}
need=()
optional=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
case "$set_name" in
demo) ;;
test)
	# haproxy has its own script: its package must not start a system service.
	bash "$(dirname "$0")/install-bench-deps.sh" >/dev/null
	command -v podman >/dev/null 2>&1 || optional+=(podman)
	command -v runc >/dev/null 2>&1 || optional+=(runc)
	[ -x /usr/lib/podman/netavark ] || command -v netavark >/dev/null 2>&1 || optional+=(netavark)
	;;
*)
	echo "deps: unknown set $set_name (want demo or test)" >&2
	exit 2
	;;
esac
all=("${need[@]}" "${optional[@]}")
if [ ${#all[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${all[*]}; install them (Debian: sudo apt-get install --no-install-recommends ${all[*]})" >&2
	# The tests that need the optional ones need root too, and fail saying
	# what to do (or skip, loudly, when told to); only iproute2 is needed
	# for everything else.
	[ ${#need[@]} -eq 0 ] || exit 1
	exit 0
fi
echo "deps: installing ${all[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${all[@]}" >/dev/null
