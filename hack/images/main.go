// Command images builds the OCI images of ferry-controller and
// ferry-gateway without a Docker daemon (internal/tooling/images):
//
//	go run ./hack/images                                  # dist/images, this machine's arch
//	go run ./hack/images -platforms linux/amd64,linux/arm64
//	go run ./hack/images -push registry.example.com/ferry  # and push the indexes
//	go run ./hack/images -verify                          # build twice, from an empty build cache the second time, and compare
//
// `make images` runs it. The digests depend only on the commit: the same
// commit gives the same digests on any machine with the same Go.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/images"
	"ferry.dev/ferry/internal/tooling/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "dist/images", "directory for the OCI layout, the tarballs and the SBOMs")
	registry := flag.String("registry", install.DefaultRegistry, "registry the tarballs are tagged for (ferry install --image-registry)")
	tag := flag.String("tag", "", "image tag and version (default: git describe --tags --always --dirty)")
	platforms := flag.String("platforms", "linux/"+runtime.GOARCH, "comma-separated OS/ARCH list, e.g. linux/amd64,linux/arm64")
	// Not the origin remote: a clone's remote differs from machine to
	// machine, and would change the digests.
	source := flag.String("source", "https://ferry.dev/ferry", "org.opencontainers.image.source")
	push := flag.String("push", "", "also push the multi-platform indexes to this registry, e.g. ghcr.io/you")
	verify := flag.Bool("verify", false, "build a second time in another directory with an empty build cache, and fail unless the digests are the same")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	meta, err := gitMeta(ctx, root, *tag, *source)
	if err != nil {
		return err
	}
	var plats []v1.Platform
	for _, s := range strings.Split(*platforms, ",") {
		p, err := images.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		plats = append(plats, p)
	}
	work, err := os.MkdirTemp("", "ferry-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	start := time.Now()
	built, err := images.Build(ctx, images.Options{
		Root: root, WorkDir: work, Platforms: plats, Meta: meta,
		Log: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "images: "+format+"\n", args...) },
	})
	if err != nil {
		return err
	}
	if *verify {
		if err := verifyReproducible(ctx, root, plats, meta, built); err != nil {
			return err
		}
	}
	dir := *out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	written, err := images.Write(dir, *registry, meta, built)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tDIGEST\tTARBALL")
	for _, w := range written {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.Ref, w.Platform, w.Digest, w.Tarball)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Printf("wrote %s (OCI layout in %s/, SBOMs beside the tarballs) in %s\n", dir, images.LayoutDir, time.Since(start).Round(100*time.Millisecond))
	if *push != "" {
		refs, err := images.Push(ctx, *push, meta, built)
		if err != nil {
			return err
		}
		for _, r := range refs {
			fmt.Println("pushed", r)
		}
		fmt.Printf("install with: ferry install --image-registry %s --image-tag %s ...\n", *push, meta.Version)
		return nil
	}
	fmt.Printf("load into kind: for f in %s/*_linux_%s.tar; do kind load image-archive \"$f\"; done\n", dir, runtime.GOARCH)
	fmt.Printf("then install with: ferry install --image-registry %s --image-tag %s ... (docs/install.md)\n", *registry, meta.Version)
	return nil
}

// gitMeta reads the build's identity from git: the commit, its time (for
// reproducible timestamps) and the description as the tag.
func gitMeta(ctx context.Context, root, tag, source string) (images.Meta, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		b, err := cmd.Output()
		return strings.TrimSpace(string(b)), err
	}
	var m images.Meta
	var err error
	if m.Revision, err = git("rev-parse", "HEAD"); err != nil {
		return m, fmt.Errorf("not a git checkout (the images are stamped with the commit): %w", err)
	}
	ct, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return m, fmt.Errorf("commit time: %w", err)
	}
	// SOURCE_DATE_EPOCH, the reproducible-builds convention, wins.
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		ct = e
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return m, fmt.Errorf("commit time %q: %w", ct, err)
	}
	m.Created = time.Unix(secs, 0).UTC()
	m.Version = tag
	if m.Version == "" {
		if m.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			return m, fmt.Errorf("git describe: %w", err)
		}
	}
	m.Source = source
	return m, nil
}

// verifyReproducible builds again from nothing: another work directory (so
// no path can leak in) and an empty build cache (so nothing is reused), and
// compares every index digest with the first build's.
func verifyReproducible(ctx context.Context, root string, plats []v1.Platform, meta images.Meta, first []images.Built) error {
	work, err := os.MkdirTemp("", "ferry-images-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Fprintln(os.Stderr, "images: -verify: building again with an empty build cache (minutes)")
	again, err := images.Build(ctx, images.Options{
		Root: root, WorkDir: filepath.Join(work, "build"), Platforms: plats, Meta: meta,
		Env: []string{"GOCACHE=" + filepath.Join(work, "gocache")},
	})
	if err != nil {
		return err
	}
	for i, b := range first {
		want, err := b.Index.Digest()
		if err != nil {
			return err
		}
		got, err := again[i].Index.Digest()
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("not reproducible: %s is %s, and %s when built again from nothing", b.Daemon.Name, want, got)
		}
		fmt.Printf("reproducible: %s %s both times\n", b.Daemon.Name, want)
	}
	return nil
}
