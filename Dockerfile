# syntax=docker/dockerfile:1
#
# Images for Ferry's two daemons, from one build stage:
#
#   docker build --target ferry-controller --build-arg VERSION=$(git describe --tags --always) -t ferry.dev/ferry-controller:TAG .
#   docker build --target ferry-gateway    --build-arg VERSION=$(git describe --tags --always) -t ferry.dev/ferry-gateway:TAG .
#
# The binaries are static (CGO_ENABLED=0), so the runtime image is distroless
# "static": no shell, no package manager, no libc; only CA certificates,
# tzdata and /etc/passwd with the nonroot user (65532), which the manifests
# of `ferry install` also name (runAsUser 65532, runAsNonRoot).

ARG GO_VERSION=1.26

# Build on the builder's platform and cross-compile, which is much faster
# than emulating the target platform.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X ferry.dev/ferry/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/ferry-controller ./cmd/ferry-gateway

FROM gcr.io/distroless/static:nonroot AS ferry-controller
COPY --from=build /out/ferry-controller /ferry-controller
USER 65532:65532
# Admin: /live, /ready, /metrics.
EXPOSE 9990
ENTRYPOINT ["/ferry-controller"]

FROM gcr.io/distroless/static:nonroot AS ferry-gateway
COPY --from=build /out/ferry-gateway /ferry-gateway
USER 65532:65532
# Ingress (mTLS from other clusters) and admin. Egress ports (41000-48999 by
# default) are reached through pod IPs in EndpointSlices, not published here.
EXPOSE 4143 4191
ENTRYPOINT ["/ferry-gateway"]
