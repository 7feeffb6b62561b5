#!/usr/bin/env bash
# Builds the MCS API conformance suite (third_party/mcs-api-conformance,
# vendored at a pinned mcs-api commit; the module proxy does not serve it)
# into bin/mcs-conformance.test. Its modules come from the Go module proxy
# and are pinned by its go.sum, so a build never fetches from GitHub.
#
# Idempotent: the binary is rebuilt only when a file of the suite is newer.
#
#   bin/mcs-conformance.test -ginkgo.dry-run        # lists the 27 specs
#   make conformance                                # runs them on the sandbox
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
out=bin/mcs-conformance.test
src=third_party/mcs-api-conformance
if [ -x "$out" ] && [ -z "$(find "$src" -newer "$out" -type f -print -quit)" ]; then
	echo "conformance: $out is up to date"
	exit 0
fi
go -C "$src" test -c -o "$PWD/$out.tmp" .
mv "$out.tmp" "$out"
echo "conformance: built $out"
