# syntax=docker/dockerfile:1
#
# Images for Ferry's two daemons, for people who build with Docker:
#
#   docker build --target ferry-controller --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg REVISION=$(git rev-parse HEAD) -t ferry.dev/ferry-controller:TAG .
#   docker build --target ferry-gateway    --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg REVISION=$(git rev-parse HEAD) -t ferry.dev/ferry-gateway:TAG .
#
# `make images` builds the same images without a Docker daemon
# (internal/tooling/images, go-containerregistry), reproducibly, for several
# platforms, with SBOMs. Both give the same file tree and config: the static
# binary at /<name> on an empty base, run as 65532:65532, the user `ferry
# install` renders. TestDockerfileParity keeps this file and the builder in
# step; change them together.

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
ARG REVISION=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X ferry.dev/ferry/internal/version.Version=${VERSION} -X ferry.dev/ferry/internal/version.Commit=${REVISION}" \
      -o /out/ ./cmd/ferry-controller ./cmd/ferry-gateway

# The daemons need nothing from a base image: they are static, reach the
# API server with the service account's CA, and run as a numeric user.
FROM scratch AS ferry-controller
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ferry-controller" \
      org.opencontainers.image.description="Ferry's controller: issues identities, exports and imports Services across clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://ferry.dev/ferry" \
      org.opencontainers.image.vendor="Ferry"
COPY --from=build /out/ferry-controller /ferry-controller
USER 65532:65532
# Admin: /live, /ready, /metrics.
EXPOSE 9990
ENTRYPOINT ["/ferry-controller"]

FROM scratch AS ferry-gateway
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ferry-gateway" \
      org.opencontainers.image.description="Ferry's gateway: the mTLS ingress, the export feed and the egress ports of one cluster" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://ferry.dev/ferry" \
      org.opencontainers.image.vendor="Ferry"
COPY --from=build /out/ferry-gateway /ferry-gateway
USER 65532:65532
# Ingress (mTLS from other clusters) and admin. Egress ports (10000-31999 by
# default) are reached through pod IPs in EndpointSlices, not published here.
EXPOSE 4143 4191
ENTRYPOINT ["/ferry-gateway"]
