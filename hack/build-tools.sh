#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by Ferry's tests, demo and
# benchmarks (kube-apiserver and etcd; kube-controller-manager, whose
# workload controllers the conformance sandbox runs), the cluster DNS (CoreDNS, whose
# kubernetes plugin serves clusterset.local), and kubectl (for `kubectl ferry`),
# from Go modules into bin/.
#
# Idempotent: a binary is rebuilt only when the tools module (go.mod, go.sum or a
# wrapper main) is newer than it, so a warm run costs a few milliseconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/hack/tools"
bin="$root/bin"
mkdir -p "$bin"
# One builder at a time: `make tools` and a test binary that finds a tool
# missing (testenv.EnsureBinaries) may run at once, and both write the same
# temporary files. flock waits for the other to finish; its build is then
# up to date here.
exec 9>"$bin/.build.lock"
flock 9

kube_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$tools/go.mod" | sed 's/^require //')
[ -n "$kube_version" ] || kube_version=$(grep -Eo 'k8s.io/kubernetes v[0-9.]+' "$tools/go.mod" | awk 'NR == 1 {print $2}')
etcd_version=$(cd "$tools" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)

# stale NAME: true when bin/NAME is missing or older than any input of the tools module.
stale() {
	local out="$bin/$1"
	[ -x "$out" ] || return 0
	[ -n "$(find "$tools" -newer "$out" \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print -quit)" ]
}

build() {
	local name=$1 ldflags=$2
	if ! stale "$name"; then
		echo "tools: bin/$name is up to date"
		return
	fi
	echo "tools: building bin/$name (a cold build takes a few minutes on 2 cores)..."
	local start=$SECONDS
	(cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$name.tmp" "./cmd/$name")
	mv "$bin/$name.tmp" "$bin/$name"
	echo "tools: built bin/$name in $((SECONDS - start))s"
}

major=${kube_version#v}; major=${major%%.*}
minor=${kube_version#v*.}; minor=${minor%%.*}
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
build kube-apiserver "$kube_ldflags"
build kube-controller-manager "$kube_ldflags"
# kubectl runs `kubectl ferry` in the CLI's plugin test.
build kubectl "$kube_ldflags"
build etcd "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-$etcd_version"
coredns_version=$(cd "$tools" && go list -m -f '{{.Version}}' github.com/coredns/coredns)
build coredns "-X github.com/coredns/coredns/coremain.GitCommit=module-$coredns_version"
