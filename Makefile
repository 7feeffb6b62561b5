# Ferry's build. `make test` and `make demo` are the README's two commands and
# must work on a fresh machine: every target installs or builds what it needs.

SHELL := /usr/bin/env bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X ferry.dev/ferry/internal/version.Version=$(VERSION) -X ferry.dev/ferry/internal/version.Commit=$(shell git rev-parse HEAD 2>/dev/null)
STATICCHECK_VERSION := v0.8.2
GOLANGCI_LINT_VERSION := v2.15.0
# The whole suite on 2 cores; packages share clusters, so keep -p modest.
TEST_TIMEOUT ?= 20m
TEST_FLAGS ?=
FUZZTIME ?= 60s

BINARIES := ferry ferry-controller ferry-gateway

.PHONY: all build tools test unit lint fmt vet staticcheck golangci fuzz demo sandbox conformance bench clean deps deps-test generate proto bench-peer bench-scale chart chaos soak images vulncheck

all: build

## build: the three Ferry binaries into bin/
build:
	@mkdir -p bin
	@for b in $(BINARIES); do \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$$b ./cmd/$$b || exit 1; \
	done
	@cp bin/ferry bin/kubectl-ferry # the same binary, as kubectl's plugin (`kubectl ferry`)
	@echo "built: $(addprefix bin/,$(BINARIES)) bin/kubectl-ferry"

## images: OCI images of both daemons, built without Docker, into dist/images:
## an OCI layout, docker-archive tarballs (docker/podman/kind load) and SBOMs.
## The same commit gives the same digests. PUSH=registry.example.com/ferry pushes.
PLATFORMS ?= linux/amd64,linux/arm64
images: vulncheck
	@$(GO) run ./hack/images -out dist/images -tag $(VERSION) -platforms $(PLATFORMS) $(if $(PUSH),-push $(PUSH))

## tools: kube-apiserver and etcd from Go modules into bin/ (idempotent)
tools:
	@bash hack/build-tools.sh

## deps: system packages the demo needs; deps-test: and those the tests use
## (root on Debian; no-op when present)
deps:
	@bash hack/install-deps.sh demo

deps-test:
	@bash hack/install-deps.sh test

## test: formatting, vet, staticcheck, then every test (netns tests need root)
test: deps-test tools lint unit

unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

## lint: gofmt, go vet, staticcheck, the boundaries golangci-lint enforces, govulncheck
lint: fmt vet staticcheck golangci vulncheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './hack/tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi; echo "gofmt: clean"

vet:
	$(GO) vet ./...

staticcheck:
	@[ -x bin/staticcheck ] && bin/staticcheck -version 2>/dev/null | grep -F "$(STATICCHECK_VERSION:v%=%)" >/dev/null || \
		GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	bin/staticcheck ./...

## vulncheck: govulncheck (pinned) against a local database built from a pinned
## golang.org/x/vulndb; fails on a reached vulnerability in a required module
## (STRICT=1: in the standard library too, for release builds)
vulncheck:
	@$(GO) run ./hack/vulncheck $(if $(STRICT),-strict)

## golangci: depguard, importas, forbidigo, sloglint, errorlint (.golangci.yml)
golangci:
	@GO=$(GO) GOLANGCI_LINT_VERSION=$(GOLANGCI_LINT_VERSION) bash hack/lint.sh

## conformance: the upstream MCS API conformance suite on two clusters linked both ways
## (also run by `make test`, as internal/tooling/conformance's tests); reports in conformance-report/
conformance: deps tools build
	@$(GO) build -o bin/ferry-conformance ./hack/conformance
	@bin/ferry-conformance -out conformance-report

## demo: three local clusters, Ferry linking them, traffic across; then stop
demo: deps tools build
	@$(GO) build -o bin/ferry-demo ./hack/demo
	@bin/ferry-demo

## sandbox: the same, but keep the clusters and open a shell to explore
sandbox: deps tools build
	@$(GO) build -o bin/ferry-demo ./hack/demo
	@bin/ferry-demo -keep

## fuzz: every fuzz target for FUZZTIME each (default 60s); commit crashers in testdata/fuzz
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) bash hack/fuzz.sh

## bench: Go benchmarks (figures go to docs/benchmarks.md)
bench: tools
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-peer: Ferry's gateway pair against an HAProxy pair, same run, with ratios
bench-peer: deps-test
	$(GO) run ./hack/bench $(BENCH_PEER_FLAGS)

## bench-scale: the real daemons at N exports and M feed importers (root; BENCH_SCALE_FLAGS="-n 10000")
bench-scale: deps
	$(GO) run ./hack/benchscale $(BENCH_SCALE_FLAGS)

## chaos: the reliability scenarios at full length, one row each (root; docs/reliability.md; CHAOS_FLAGS="-only R3")
chaos: deps tools
	$(GO) run ./hack/chaos $(CHAOS_FLAGS)

## soak: churn and traffic for DURATION (default 30m); RSS and goroutine trends of every daemon (root; docs/reliability.md)
DURATION ?= 30m
soak: deps tools
	$(GO) run ./hack/chaos -soak $(DURATION) $(SOAK_FLAGS)

clean:
	rm -rf bin

CONTROLLER_GEN := sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0

## chart: regenerate the Helm chart from the install renderer (a test fails on drift)
chart:
	$(GO) run ./hack/genchart

## generate: deepcopy and CRDs from api/ (commit the result)
generate:
	$(GO) run $(CONTROLLER_GEN) object paths=./api/... crd:crdVersions=v1 output:crd:dir=./api/crds

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

## proto: regenerate the feed's gRPC code (commit the result; builds never need protoc)
proto:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	cd internal/feed/feedpb && PATH=$(CURDIR)/bin:$$PATH protoc -I . --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative feed.proto
