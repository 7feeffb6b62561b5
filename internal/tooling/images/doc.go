// Package images builds the OCI images of Ferry's two daemons without a
// Docker daemon, with go-containerregistry.
//
// Each image is one layer on an empty base: the static binary at /<name>,
// owned by root and not writable by the user it runs as (65532, the user
// `ferry install` renders). There is no shell, libc, CA bundle or passwd
// file: the daemons need none (they reach the API server with the service
// account's own CA, and the user is numeric).
//
// Images are reproducible: the layer's timestamps and the config's created
// time are the commit's time, the binaries are built with -trimpath, and
// nothing else varies, so the same commit built twice, on any machine with
// the same Go, gives the same digests. The Dockerfile builds the same file
// tree for people who use Docker; TestDockerfileParity keeps the two equal.
//
// Write produces what the runtimes load: an OCI layout holding every image,
// and per platform a docker-archive tarball (docker load, podman load, kind
// load image-archive) with an SPDX SBOM beside it. Push sends the images to
// a registry as multi-platform indexes. The command is hack/images
// (`make images`); docs/install.md has the kind workflow.
package images
