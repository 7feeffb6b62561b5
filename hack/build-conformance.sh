#!/usr/bin/env bash
# Builds the MCS API conformance suite (third_party/mcs-api-conformance,
# vendored at a pinned mcs-api commit; the module proxy does not serve it)
# into bin/mcs-conformance.test. Its modules come from the Go module proxy
# and are pinned by its go.sum, so a build never fetches from GitHub.
#
#   bin/mcs-conformance.test -ginkgo.dry-run        # lists the 27 specs
#
# Running it against the sandbox needs the sandbox's kubelet stand-in
# (docs/mcs-conformance.md, "Next steps").
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go -C third_party/mcs-api-conformance test -c -o "$PWD/bin/mcs-conformance.test" .
echo "conformance: built bin/mcs-conformance.test"
