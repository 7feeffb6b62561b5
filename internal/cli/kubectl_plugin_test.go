package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// TestKubectlPlugin: a real kubectl, built by `make tools` from the tools
// module's pinned Kubernetes, finds kubectl-ferry on PATH and `kubectl
// ferry check` runs ferry's checks against a cluster. -short skips it (it
// builds ferry, and kubectl when missing); CI runs it.
func TestKubectlPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED (NOT PASSED) under -short: TestKubectlPlugin builds kubectl and ferry; CI runs it")
	}
	env := shared.Get(t)
	healthyNorth(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kubectl := kubectlBinary(t)
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

// kubectlBinary is $FERRY_KUBECTL, or the kubectl that hack/build-tools.sh
// builds beside kube-apiserver from the tools module (pinned by its go.sum).
func kubectlBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FERRY_KUBECTL"); p != "" {
		return p
	}
	dir, err := testenv.EnsureBinaries()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "kubectl")
	if !isExecutable(p) {
		t.Fatalf("%s is missing: run make tools", p)
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
