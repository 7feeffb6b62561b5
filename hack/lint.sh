#!/usr/bin/env bash
# Runs golangci-lint (config: .golangci.yml) over the module from the repo root.
#
# The linter is pinned and built from the Go module proxy into bin/, the way the
# Makefile installs staticcheck: skipped when bin/golangci-lint already reports
# the pinned version and was built by the Go toolchain in use (a binary built by
# an older Go refuses to lint code that targets a newer one). A cold install
# takes a few minutes on 2 cores; a warm check costs milliseconds.
#
# Extra arguments go to `golangci-lint run`, e.g. `bash hack/lint.sh --fix`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# A reader that exits before its input ends (head, grep -q, grep -m) kills the
# writer with SIGPIPE; under pipefail the script then fails by chance, with
# exit 141, as the first `make demo` did (issue 17). Read to the end instead:
# sed -n 1p, awk 'NR == 1', or grep without -q into /dev/null.
if early=$(git grep -nE '[|][[:space:]]*(head|grep[[:space:]]+-[A-Za-z]*[qm])' -- '*.sh' Makefile .ci/run); then
	echo "lint: a pipe into a reader that exits early can fail under pipefail (SIGPIPE, exit 141):" >&2
	echo "$early" >&2
	exit 1
fi

GO=${GO:-go}
version=${GOLANGCI_LINT_VERSION:-v2.15.0}
bin="$root/bin/golangci-lint"

installed() {
	[ -x "$bin" ] || return 1
	[ "$("$bin" version --short 2>/dev/null)" = "${version#v}" ] || return 1
	[ "$("$GO" version "$bin" 2>/dev/null | awk '{print $2}')" = "$("$GO" env GOVERSION)" ]
}

if ! installed; then
	echo "golangci-lint: installing $version into bin/ (a cold build takes a few minutes)..."
	start=$SECONDS
	GOBIN="$root/bin" "$GO" install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
	echo "golangci-lint: installed in $((SECONDS - start))s"
fi

echo "golangci-lint: $("$bin" version)"
exec "$bin" run "$@" ./...
