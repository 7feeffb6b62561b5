package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubectlPlugin: a real kubectl, built from the tools module's pinned
// Kubernetes, finds kubectl-ferry on PATH and `kubectl ferry check` runs
// ferry's checks against a cluster. The kubectl build is cached by the
// tools module's go.sum (a cold build took 66 s on the 2-core machine,
// a cached one a second), and skipped with -short.
func TestKubectlPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kubectl and ferry")
	}
	env := shared.Get(t)
	healthyNorth(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kubectl := buildKubectl(t, root)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, PluginBinary), "./cmd/ferry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-ferry: %v\n%s", err, out)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("plugin", "list"); err != nil || !strings.Contains(out, filepath.Join(dir, PluginBinary)) {
		t.Errorf("kubectl plugin list: %v\n%s", err, out)
	}
	out, err := run("ferry", "--context", checked, "check")
	if err != nil {
		t.Fatalf("kubectl ferry check: %v\n%s", err, out)
	}
	for _, want := range []string{`Checking Ferry in context "north"`, "✔ Links are connected, synced and healthy", "Status: all checks passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl ferry check lacks %q:\n%s", want, out)
		}
	}
	if out, _ := run("ferry", "check", "--help"); !strings.Contains(out, "Usage:\n  kubectl ferry check [flags]") {
		t.Errorf("kubectl ferry check --help:\n%s", out)
	}
}

// buildKubectl returns $FERRY_KUBECTL, bin/kubectl, or a kubectl built from
// k8s.io/kubernetes/cmd/kubectl at the tools module's version. The tools
// module's go.sum lacks kubectl's own dependencies, so the build runs in a
// copy with -mod=mod, never touching hack/tools.
func buildKubectl(t *testing.T, root string) string {
	t.Helper()
	if p := os.Getenv("FERRY_KUBECTL"); p != "" {
		return p
	}
	if p := filepath.Join(root, "bin", "kubectl"); isExecutable(p) {
		return p
	}
	sum, err := os.ReadFile(filepath.Join(root, "hack", "tools", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(sum)
	cache := filepath.Join(os.TempDir(), "ferry-kubectl-"+hex.EncodeToString(h[:6]))
	bin := filepath.Join(cache, "kubectl")
	if isExecutable(bin) {
		return bin
	}
	mod := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, "hack", "tools", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// Test binaries of several packages (or checkouts) may build at once:
	// each writes its own file, and the rename makes whichever ends first
	// the cached one, never a half-written kubectl.
	tmp, err := os.CreateTemp(cache, "kubectl-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(tmp.Name()) }) // gone after the rename
	start := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp.Name(), "k8s.io/kubernetes/cmd/kubectl")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl: %v\n%s", err, out)
	}
	// CreateTemp made the file 0600; go build renames its output over it,
	// except where it must copy into the existing file, which keeps 0600.
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built kubectl in %s", time.Since(start).Round(time.Second))
	return bin
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
