package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
)

// Daemon is one image: a static binary on an empty base.
type Daemon struct {
	// Name is the image's and the binary's name (the binary is /<Name>).
	Name        string
	Description string
	// Ports are the TCP ports the daemon listens on, recorded in the image
	// config as EXPOSE would; the Deployment's ports are what Kubernetes uses.
	Ports []int
}

// Daemons are the images the repo ships, named as `ferry install` refers to
// them (<registry>/<name>:<tag>).
var Daemons = []Daemon{
	{
		Name:        install.ControllerImageName,
		Description: "Ferry's controller: issues identities, exports and imports Services across clusters",
		Ports:       []int{contract.ControllerAdminPort},
	},
	{
		Name:        install.GatewayImageName,
		Description: "Ferry's gateway: the mTLS ingress, the export feed and the egress ports of one cluster",
		Ports:       []int{contract.IngressPort, contract.GatewayAdminPort},
	},
}

// User is who the images run as: the non-root user and group that `ferry
// install` renders (runAsUser, runAsGroup), so the image alone, under any
// runtime, does not run as root either.
const User = "65532:65532"

// binaryMode lets everyone execute the binary and no one but root (who owns
// it) write it; the daemons run as User, so a compromised process cannot
// replace its own program even where the root filesystem is writable.
const binaryMode = 0o755

// Meta is what identifies a build: it goes into the OCI labels and
// annotations, and Created into every timestamp.
type Meta struct {
	// Version is the image tag and org.opencontainers.image.version.
	Version string
	// Revision is the commit the binaries were built from.
	Revision string
	// Source is the repository's URL.
	Source string
	// Created is the commit's time, not the build's: a rebuild of the same
	// commit must give the same bytes.
	Created time.Time
}

// Labels are the OCI labels (and manifest annotations) of d's image.
func (m Meta) Labels(d Daemon) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       d.Name,
		"org.opencontainers.image.description": d.Description,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.vendor":      "Ferry",
	}
	for k, v := range l {
		if v == "" {
			delete(l, k)
		}
	}
	return l
}

// Image assembles d's image for platform p from its static binary.
func Image(d Daemon, binary []byte, p v1.Platform, m Meta) (v1.Image, error) {
	layerTar, err := Layer(d, binary, m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("images: layer of %s: %w", d.Name, err)
	}
	created := v1.Time{Time: m.Created.UTC()}
	ports := map[string]struct{}{}
	for _, port := range d.Ports {
		ports[strconv.Itoa(port)+"/tcp"] = struct{}{}
	}
	labels := m.Labels(d)
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		Config: v1.Config{
			User:         User,
			Entrypoint:   []string{"/" + d.Name},
			ExposedPorts: ports,
			Labels:       labels,
			WorkingDir:   "/",
		},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, fmt.Errorf("images: config of %s: %w", d.Name, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "COPY /" + d.Name + " (ferry hack/images)",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("images: %s: %w", d.Name, err)
	}
	annotated, ok := mutate.Annotations(img, labels).(v1.Image)
	if !ok {
		return nil, fmt.Errorf("images: %s: annotations changed the image's type", d.Name)
	}
	return annotated, nil
}

// Layer is the image's only layer, uncompressed: /<name>, root-owned, mode
// 0755, stamped with the commit's time. Nothing else, not even a directory
// entry, so the tree is exactly what the Dockerfile's COPY gives.
func Layer(d Daemon, binary []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     d.Name,
		Mode:     binaryMode,
		Size:     int64(len(binary)),
		ModTime:  created.UTC(),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("images: layer of %s: %w", d.Name, err)
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, fmt.Errorf("images: layer of %s: %w", d.Name, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("images: layer of %s: %w", d.Name, err)
	}
	return buf.Bytes(), nil
}

// Index gathers one daemon's per-platform images into a multi-platform
// index, so one reference pulls the right binary on amd64 and arm64 nodes.
func Index(d Daemon, imgs []PlatformImage, m Meta) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, 0, len(imgs))
	for _, pi := range imgs {
		p := pi.Platform
		adds = append(adds, mutate.IndexAddendum{Add: pi.Image, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	annotated, ok := mutate.Annotations(idx, m.Labels(d)).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("images: %s: annotations changed the index's type", d.Name)
	}
	return annotated, nil
}

// PlatformImage is one daemon's image for one platform.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
	// Binary is the path of the binary in it, for the SBOM.
	Binary string
}

// ParsePlatform reads "os/arch" or "os/arch/variant".
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("images: platform %q: want OS/ARCH, e.g. linux/amd64", s)
	}
	return *p, nil
}
