package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Built is one daemon's images: one per platform, and their index.
type Built struct {
	Daemon Daemon
	Images []PlatformImage
	Index  v1.ImageIndex
}

// Options say what Build builds.
type Options struct {
	// Root is the repository's root (where go.mod is).
	Root string
	// WorkDir receives the binaries, in one directory per platform.
	WorkDir   string
	Platforms []v1.Platform
	Meta      Meta
	// Log, if set, is told what is being built (progress for the command).
	Log func(format string, args ...any)
	// Env is added to the go command's environment (e.g. another GOCACHE,
	// to check that a build from nothing gives the same bytes).
	Env []string
}

// Build compiles both daemons for every platform and assembles their images.
func Build(ctx context.Context, o Options) ([]Built, error) {
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("images: no platform to build for")
	}
	out := make([]Built, len(Daemons))
	for i, d := range Daemons {
		out[i].Daemon = d
	}
	for _, p := range o.Platforms {
		dir := filepath.Join(o.WorkDir, p.OS+"_"+p.Architecture+p.Variant)
		if o.Log != nil {
			o.Log("building the daemons for %s", p)
		}
		if err := BuildBinaries(ctx, o.Root, dir, p, o.Meta, o.Env...); err != nil {
			return nil, err
		}
		for i, d := range Daemons {
			path := filepath.Join(dir, d.Name)
			bin, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("images: %w", err)
			}
			img, err := Image(d, bin, p, o.Meta)
			if err != nil {
				return nil, err
			}
			out[i].Images = append(out[i].Images, PlatformImage{Platform: p, Image: img, Binary: path})
		}
	}
	for i := range out {
		idx, err := Index(out[i].Daemon, out[i].Images, o.Meta)
		if err != nil {
			return nil, err
		}
		out[i].Index = idx
	}
	return out, nil
}

// BuildBinaries compiles both daemons into dir for platform p, the way the
// Makefile and the Dockerfile do: static (CGO_ENABLED=0), -trimpath so no
// path of the building machine is in them, stripped, and stamped with the
// version and commit. What else the go command would take from the
// caller's environment and changes the bytes (GOFLAGS, the instruction set
// levels) is set here, so the digests depend on the commit and the Go
// version alone.
func BuildBinaries(ctx context.Context, root, dir string, p v1.Platform, m Meta, extraEnv ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	args := []string{"build", "-trimpath", "-ldflags", LDFlags(m), "-o", dir + "/"}
	for _, d := range Daemons {
		args = append(args, "./cmd/"+d.Name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOFLAGS=-mod=readonly", "GOAMD64=v1", "GOARM64=v8.0")
	if p.Architecture == "arm" && p.Variant != "" {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Env = append(env, extraEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("images: go build for %s: %w\n%s", p, err, out)
	}
	return nil
}

// LDFlags are the linker flags of a release build: the same as the
// Makefile's, so `ferry version` and the daemons' --version name the build.
func LDFlags(m Meta) string {
	const pkg = "ferry.dev/ferry/internal/version"
	return fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Commit=%s", pkg, m.Version, pkg, m.Revision)
}
