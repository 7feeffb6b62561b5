package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// LayoutDir is the OCI layout under Write's directory.
const LayoutDir = "oci"

// Ref is d's reference in registry with tag: <registry>/<name>:<tag>, the
// reference `ferry install --image-registry R --image-tag T` renders.
func Ref(registry string, d Daemon, tag string) (name.Tag, error) {
	t, err := name.NewTag(registry+"/"+d.Name+":"+tag, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("images: reference for %s: %w", d.Name, err)
	}
	return t, nil
}

// Written is what Write produced for one image of one platform; Write
// also records them all in images.json for scripts.
type Written struct {
	Ref      string `json:"ref"`
	Platform string `json:"platform"`
	// Digest is the image manifest's; IndexDigest the multi-platform
	// index's, which a registry reference resolves to.
	Digest      string `json:"digest"`
	IndexDigest string `json:"indexDigest"`
	// Tarball and SBOM are relative to Write's directory.
	Tarball string `json:"tarball"`
	SBOM    string `json:"sbom"`
}

// TarballName is the docker-archive of d for p: ferry-gateway_linux_amd64.tar.
func TarballName(d Daemon, p v1.Platform) string {
	return d.Name + "_" + p.OS + "_" + p.Architecture + p.Variant + ".tar"
}

// Write stores the images in dir: an OCI layout with every index, named by
// its reference; per platform a docker-archive tarball tagged with the
// reference (what docker load, podman load and kind load image-archive
// take), with an SPDX SBOM beside it; and images.json listing them.
func Write(dir, registry string, m Meta, built []Built) ([]Written, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	// A fresh layout each time: appending to an old one would keep the
	// previous build's indexes beside the new ones. Tarballs and SBOMs of
	// platforms not built this time go too, so the directory holds what
	// images.json lists and nothing else of ours.
	lp := filepath.Join(dir, LayoutDir)
	if err := os.RemoveAll(lp); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	for _, d := range Daemons {
		for _, pattern := range []string{d.Name + "_*.tar", d.Name + "_*.spdx.json"} {
			stale, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, f := range stale {
				if err := os.Remove(f); err != nil {
					return nil, fmt.Errorf("images: %w", err)
				}
			}
		}
	}
	path, err := layout.Write(lp, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("images: OCI layout: %w", err)
	}
	var out []Written
	for _, b := range built {
		ref, err := Ref(registry, b.Daemon, m.Version)
		if err != nil {
			return nil, err
		}
		if err := path.AppendIndex(b.Index, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref.String(),
		})); err != nil {
			return nil, fmt.Errorf("images: OCI layout: %w", err)
		}
		idxDigest, err := b.Index.Digest()
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		for _, pi := range b.Images {
			w, err := writeOne(dir, ref, b.Daemon, pi, m)
			if err != nil {
				return nil, err
			}
			w.IndexDigest = idxDigest.String()
			out = append(out, w)
		}
	}
	manifest, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "images.json"), append(manifest, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return out, nil
}

func writeOne(dir string, ref name.Tag, d Daemon, pi PlatformImage, m Meta) (Written, error) {
	digest, err := pi.Image.Digest()
	if err != nil {
		return Written{}, fmt.Errorf("images: %w", err)
	}
	tarName := TarballName(d, pi.Platform)
	if err := tarball.WriteToFile(filepath.Join(dir, tarName), ref, pi.Image); err != nil {
		return Written{}, fmt.Errorf("images: %s: %w", tarName, err)
	}
	sbom, err := SBOM(d, ref, pi, m)
	if err != nil {
		return Written{}, err
	}
	sbomName := tarName[:len(tarName)-len(".tar")] + ".spdx.json"
	if err := os.WriteFile(filepath.Join(dir, sbomName), sbom, 0o644); err != nil {
		return Written{}, fmt.Errorf("images: %w", err)
	}
	return Written{
		Ref: ref.String(), Platform: pi.Platform.String(), Digest: digest.String(),
		Tarball: tarName, SBOM: sbomName,
	}, nil
}

// Push sends every daemon's index to registry under the tag, with the
// credentials docker and podman would use (~/.docker/config.json,
// $REGISTRY_AUTH_FILE), and returns the pushed references with digests.
func Push(ctx context.Context, registry string, m Meta, built []Built, opts ...name.Option) ([]string, error) {
	var pushed []string
	for _, b := range built {
		ref, err := name.NewTag(registry+"/"+b.Daemon.Name+":"+m.Version, opts...)
		if err != nil {
			return nil, fmt.Errorf("images: reference for %s: %w", b.Daemon.Name, err)
		}
		if err := remote.WriteIndex(ref, b.Index, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return nil, fmt.Errorf("images: push %s: %w", ref, err)
		}
		d, err := b.Index.Digest()
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		pushed = append(pushed, ref.String()+"@"+d.String())
	}
	return pushed, nil
}
