package images

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// TestDockerfileBuildsTheSameImages builds the Dockerfile's final stages
// for real, with podman (buildah inside), and compares what it made with
// the builder's images: the same file tree, byte for byte, and the same
// config. The Dockerfile's build stage needs the golang image from Docker
// Hub, which is out of reach here, so a named build context stands in for
// it (--build-context build=DIR): DIR/out holds the binaries the builder
// used, which is what that stage leaves in /out. TestDockerfileParity
// checks the rest of the build stage (static, trimmed, the same linker
// flags) without root.
func TestDockerfileBuildsTheSameImages(t *testing.T) {
	requirePodman(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	_, m, built := realImages(t)
	stage := t.TempDir()
	if err := os.Mkdir(filepath.Join(stage, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		data, err := os.ReadFile(b.Images[0].Binary)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, "out", b.Daemon.Name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	empty := t.TempDir() // the Dockerfile's final stages read nothing from the main context
	for _, b := range built {
		d := b.Daemon
		tag := fmt.Sprintf("localhost/ferry-dockerfile-test/%s:%d", d.Name, os.Getpid())
		t.Cleanup(func() { _ = runQuiet("podman", "rmi", "--force", tag) })
		podman(t, "build", "--quiet", "--layers=false", "--runtime=runc", "--build-context=build="+stage,
			"--target="+d.Name, "--build-arg=VERSION="+m.Version, "--build-arg=REVISION="+m.Revision,
			"--tag="+tag, "--file="+filepath.Join(root, "Dockerfile"), empty)
		archive := filepath.Join(t.TempDir(), d.Name+".tar")
		podman(t, "save", "--quiet", "--format=docker-archive", "--output="+archive, tag)
		docker, err := tarball.ImageFromPath(archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		ours := b.Images[0].Image

		// The tree: names, modes, owners, sizes and contents. Not the
		// timestamps: COPY keeps the file's, the builder stamps the commit's.
		if diff := cmp.Diff(imageTree(t, ours), imageTree(t, docker)); diff != "" {
			t.Errorf("%s: file tree (-builder +Dockerfile):\n%s", d.Name, diff)
		}

		oc, err := ours.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		dc, err := docker.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if oc.Config.User != dc.Config.User {
			t.Errorf("%s: user %q, Dockerfile %q", d.Name, oc.Config.User, dc.Config.User)
		}
		if diff := cmp.Diff(oc.Config.Entrypoint, dc.Config.Entrypoint); diff != "" {
			t.Errorf("%s: entrypoint (-builder +Dockerfile):\n%s", d.Name, diff)
		}
		if diff := cmp.Diff(oc.Config.ExposedPorts, dc.Config.ExposedPorts); diff != "" {
			t.Errorf("%s: ports (-builder +Dockerfile):\n%s", d.Name, diff)
		}
		if len(dc.Config.Cmd) != 0 {
			t.Errorf("%s: the Dockerfile's image has CMD %q; the builder's has none", d.Name, dc.Config.Cmd)
		}
		// Docker and buildah add PATH (no shell reads it here) and buildah
		// its own version label; both stamp their own created time.
		labels := map[string]string{}
		for k, v := range dc.Config.Labels {
			if k != "io.buildah.version" {
				labels[k] = v
			}
		}
		want := map[string]string{}
		for k, v := range oc.Config.Labels {
			if k != "org.opencontainers.image.created" {
				want[k] = v
			}
		}
		if diff := cmp.Diff(want, labels); diff != "" {
			t.Errorf("%s: labels (-builder +Dockerfile):\n%s", d.Name, diff)
		}
		for _, e := range dc.Config.Env {
			if len(e) < 5 || e[:5] != "PATH=" {
				t.Errorf("%s: the Dockerfile's image sets %s; the builder's sets no environment", d.Name, e)
			}
		}
	}
}
