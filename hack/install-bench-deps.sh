#!/usr/bin/env bash
# Installs what the peer benchmark (go run ./hack/bench) compares Ferry
# against: HAProxy, from the Debian archive, when it is missing. The harness
# only looks haproxy up on PATH (or -haproxy); it never installs anything
# itself, so a benchmark run cannot change the machine behind your back.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
	# sed reads to the end: head would exit early and, under pipefail, the
	# SIGPIPE haproxy gets would fail the script (exit 141).
	haproxy -v | sed -n 1p
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench deps: haproxy is missing; install it (Debian: sudo apt-get install haproxy)" >&2
	exit 1
fi
echo "bench deps: installing haproxy"
apt-get update -qq
# The package's postinst starts a system haproxy service where an init system
# runs; policy-rc.d 101 keeps it from doing so (the harness runs its own
# instances on loopback only), and is removed again afterwards.
cleanup_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	cleanup_policy=1
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
if [ "$cleanup_policy" -eq 1 ]; then
	rm -f /usr/sbin/policy-rc.d
fi
haproxy -v | sed -n 1p
