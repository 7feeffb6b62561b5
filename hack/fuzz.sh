#!/usr/bin/env bash
# Fuzzes every Fuzz target in the module, one after another, for FUZZTIME
# each (default 60s). A crasher is written by Go to the package's
# testdata/fuzz/<Target>/; commit it, so that `go test` replays it for good.
# Usage: bash hack/fuzz.sh [regexp]   (only targets whose name matches)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
fuzztime=${FUZZTIME:-60s}
match=${1:-.}
failed=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	[[ $name =~ $match ]] || continue
	echo "fuzz: $name in $pkg for $fuzztime"
	if ! "$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime"; then
		echo "fuzz: $name FAILED; the crasher is in $pkg/testdata/fuzz/$name/" >&2
		failed=1
	fi
done < <(grep -rhoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' -r internal | sed 's/^func //' | sort -u | while read -r n; do
	f=$(grep -rlE --include='*_test.go' "^func ${n}\(" internal | sed -n 1p)
	echo "$f:$n"
done)
exit "$failed"
