package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
	meta  = Meta{Version: "v1.2.3", Revision: "0123456789abcdef", Source: "https://ferry.dev/ferry", Created: time.Unix(1764892800, 0)}
)

// fakeBinary stands in for a daemon in the pure tests: what matters here is
// how bytes become an image, not what the bytes are. podman_test.go runs
// the real binaries.
func fakeBinary(d Daemon, p v1.Platform) []byte {
	return []byte("#!binary " + d.Name + " " + p.String() + strings.Repeat("x", 4096))
}

func mustImage(t *testing.T, d Daemon, p v1.Platform, m Meta) v1.Image {
	t.Helper()
	img, err := Image(d, fakeBinary(d, p), p, m)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestImageReproducible: the same inputs give the same digest, and each
// input that identifies a build changes it.
func TestImageReproducible(t *testing.T) {
	d := Daemons[1]
	base := digest(t, mustImage(t, d, amd64, meta))
	if again := digest(t, mustImage(t, d, amd64, meta)); again != base {
		t.Fatalf("same inputs, different digests: %s and %s", base, again)
	}
	later := meta
	later.Created = meta.Created.Add(time.Second)
	other := meta
	other.Revision = "fedcba9876543210"
	for what, got := range map[string]string{
		"another commit time": digest(t, mustImage(t, d, amd64, later)),
		"another revision":    digest(t, mustImage(t, d, amd64, other)),
		"another platform":    digest(t, mustImage(t, d, arm64, meta)),
		"another daemon":      digest(t, mustImage(t, Daemons[0], amd64, meta)),
	} {
		if got == base {
			t.Errorf("%s gave the same digest %s", what, got)
		}
	}
}

// TestImageConfig: the image runs as the non-root user install renders,
// starts the binary, and says what it is.
func TestImageConfig(t *testing.T) {
	for _, d := range Daemons {
		cf, err := mustImage(t, d, amd64, meta).ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532 (install's runAsUser)", d.Name, c.User)
		}
		if diff := cmp.Diff([]string{"/" + d.Name}, c.Entrypoint); diff != "" {
			t.Errorf("%s: entrypoint (-want +got):\n%s", d.Name, diff)
		}
		if len(c.Cmd) != 0 || len(c.Env) != 0 {
			t.Errorf("%s: cmd %q env %q; want none (the Deployment gives args and env)", d.Name, c.Cmd, c.Env)
		}
		want := map[string]string{
			"org.opencontainers.image.title":    d.Name,
			"org.opencontainers.image.version":  "v1.2.3",
			"org.opencontainers.image.revision": "0123456789abcdef",
			"org.opencontainers.image.source":   "https://ferry.dev/ferry",
			"org.opencontainers.image.created":  "2025-12-05T00:00:00Z",
		}
		for k, v := range want {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", d.Name, k, c.Labels[k], v)
			}
		}
		if !cf.Created.Time.Equal(meta.Created) {
			t.Errorf("%s: created %s, want the commit's time %s", d.Name, cf.Created.Time, meta.Created)
		}
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("%s: platform %s/%s", d.Name, cf.OS, cf.Architecture)
		}
	}
}

// treeEntry is what a file tree comparison looks at: all but timestamps.
type treeEntry struct {
	Name     string
	Type     byte
	Mode     int64 // permission bits: tar writers differ on including the type's
	UID, GID int
	Size     int64
	SHA256   string
}

// imageTree lists the image's files as the runtime would unpack them.
func imageTree(t *testing.T, img v1.Image) []treeEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []treeEntry
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				t.Fatal(err)
			}
			out = append(out, treeEntry{
				Name: "/" + strings.TrimPrefix(h.Name, "/"), Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Size: h.Size,
				SHA256: hex.EncodeToString(sum.Sum(nil)),
			})
		}
		rc.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TestImageTree: one root-owned executable, nothing else; the user the
// image runs as cannot write it.
func TestImageTree(t *testing.T) {
	for _, d := range Daemons {
		bin := fakeBinary(d, amd64)
		got := imageTree(t, mustImage(t, d, amd64, meta))
		sum := sha256.Sum256(bin)
		want := []treeEntry{{Name: "/" + d.Name, Type: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), SHA256: hex.EncodeToString(sum[:])}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: file tree (-want +got):\n%s", d.Name, diff)
		}
	}
}

func buildFake(t *testing.T, plats ...v1.Platform) []Built {
	t.Helper()
	dir := t.TempDir()
	var out []Built
	for _, d := range Daemons {
		b := Built{Daemon: d}
		for _, p := range plats {
			// The SBOM reads the binary's build info, so a real Go binary
			// must be on disk.
			path := filepath.Join(dir, d.Name+"_"+p.Architecture)
			data, err := os.ReadFile(probeBinary(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o755); err != nil {
				t.Fatal(err)
			}
			b.Images = append(b.Images, PlatformImage{Platform: p, Image: mustImage(t, d, p, meta), Binary: path})
		}
		idx, err := Index(d, b.Images, meta)
		if err != nil {
			t.Fatal(err)
		}
		b.Index = idx
		out = append(out, b)
	}
	return out
}

// TestWriteLoadable: what Write leaves can be read back by the formats'
// own readers: the OCI layout by reference name, and each docker archive by
// its tag, with the same image inside.
func TestWriteLoadable(t *testing.T) {
	built := buildFake(t, amd64, arm64)
	dir := t.TempDir()
	written, err := Write(dir, "registry.test:5000/ferry", meta, built)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 4 {
		t.Fatalf("wrote %d images, want 2 daemons × 2 platforms", len(written))
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, LayoutDir))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	byRef := map[string]string{}
	for _, desc := range im.Manifests {
		byRef[desc.Annotations["org.opencontainers.image.ref.name"]] = desc.Digest.String()
	}
	for _, b := range built {
		ref := "registry.test:5000/ferry/" + b.Daemon.Name + ":v1.2.3"
		if got, want := byRef[ref], digest(t, b.Index); got != want {
			t.Errorf("OCI layout: %s is %q, want the index %s", ref, got, want)
		}
	}
	for _, w := range written {
		tag, err := name.NewTag(w.Ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(filepath.Join(dir, w.Tarball), &tag)
		if err != nil {
			t.Fatalf("%s: %v", w.Tarball, err)
		}
		// A docker archive keeps the config and layers, not the manifest:
		// the config digest (the image ID docker and podman show) must match.
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		want := configDigest(t, built, w)
		if cfg.String() != want {
			t.Errorf("%s: config %s, want %s", w.Tarball, cfg, want)
		}
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		}
		b, err := os.ReadFile(filepath.Join(dir, w.SBOM))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
			t.Errorf("%s: not an SPDX 2.3 document (%v)", w.SBOM, err)
		}
	}
	listing, err := os.ReadFile(filepath.Join(dir, "images.json"))
	if err != nil || !bytes.Contains(listing, []byte(written[0].Digest)) {
		t.Errorf("images.json does not list %s (%v)", written[0].Digest, err)
	}
}

func configDigest(t *testing.T, built []Built, w Written) string {
	t.Helper()
	for _, b := range built {
		for _, pi := range b.Images {
			if digest(t, pi.Image) == w.Digest {
				h, err := pi.Image.ConfigName()
				if err != nil {
					t.Fatal(err)
				}
				return h.String()
			}
		}
	}
	t.Fatalf("no built image has digest %s", w.Digest)
	return ""
}

// TestPush: the indexes reach a registry (go-containerregistry's own, on
// loopback) and come back with the same digests and platforms.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	built := buildFake(t, amd64, arm64)
	pushed, err := Push(t.Context(), host+"/ferry", meta, built, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed) != len(Daemons) {
		t.Fatalf("pushed %v", pushed)
	}
	for _, b := range built {
		ref, err := name.NewTag(host+"/ferry/"+b.Daemon.Name+":v1.2.3", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := digest(t, idx), digest(t, b.Index); got != want {
			t.Errorf("%s: registry has %s, pushed %s", ref, got, want)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var plats []string
		for _, m := range im.Manifests {
			plats = append(plats, m.Platform.String())
		}
		if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, plats); diff != "" {
			t.Errorf("%s: platforms (-want +got):\n%s", ref, diff)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	for in, ok := range map[string]bool{"linux/amd64": true, "linux/arm/v7": true, "linux": false, "": false} {
		if _, err := ParsePlatform(in); (err == nil) != ok {
			t.Errorf("ParsePlatform(%q): err %v, want ok=%v", in, err, ok)
		}
	}
}

var probe struct {
	once sync.Once
	path string
	err  error
}

// probeBinary builds testdata/sbomprobe once per test run: a real binary
// whose build info lists modules (a test binary's lists none).
func probeBinary(t *testing.T) string {
	t.Helper()
	probe.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-sbomprobe-")
		if err != nil {
			probe.err = err
			return
		}
		probe.path = filepath.Join(dir, "sbomprobe")
		out, err := exec.Command("go", "build", "-trimpath", "-o", probe.path, "./testdata/sbomprobe").CombinedOutput()
		if err != nil {
			probe.err = fmt.Errorf("go build ./testdata/sbomprobe: %w\n%s", err, out)
		}
	})
	if probe.err != nil {
		t.Fatal(probe.err)
	}
	return probe.path
}
