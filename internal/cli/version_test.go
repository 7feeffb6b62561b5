package cli

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVersionClientOnly(t *testing.T) {
	out, stderr, err := execFerry(t, "version", "--client")
	if err != nil || stderr != "" || !regexp.MustCompile(`^Client:     ferry \S+ \(go[^)]+\)\n$`).MatchString(out) {
		t.Errorf("version --client: %v, %q, %q", err, out, stderr)
	}
	// The root's --version flag still prints the one-line form.
	if out, _, _ := execFerry(t, "--version"); !strings.HasPrefix(out, "ferry ") {
		t.Errorf("--version: %q", out)
	}
}

func TestVersionServer(t *testing.T) {
	installEast(t)
	out := mustFerryOn(t, exporter, "version")
	for _, want := range []string{
		"Client:     ferry ",
		`Kubernetes: v1.`,
		`(context "east")`,
		"Controller: " + eastImageTag + " (ferry.dev/ferry-controller:" + eastImageTag + ", 1/1 ready)\n",
		"Gateway:    " + eastImageTag + " (ferry.dev/ferry-gateway:" + eastImageTag + ", 2/2 ready)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	out = mustFerryOn(t, checked, "version")
	if !strings.Contains(out, "Controller: not installed (no Deployment ferry-system/ferry-controller)") {
		t.Errorf("without Ferry:\n%s", out)
	}
	var r versionReport
	if err := json.Unmarshal([]byte(mustFerryOn(t, exporter, "version", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Server == nil || r.Server.Controller == nil || r.Server.Controller.Version != eastImageTag || r.Note != "" {
		t.Errorf("-o json: %+v", r)
	}
}

// TestVersionUnreachable: a cluster that is down, or no kubeconfig at all,
// is a note under the client version, not an error.
func TestVersionUnreachable(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	writeKubeconfig(t, kc, "https://127.0.0.1:1", "down")
	for name, args := range map[string][]string{
		"down":          {"--kubeconfig", kc},
		"no kubeconfig": {"--kubeconfig", filepath.Join(dir, "missing")},
	} {
		out, _, err := execFerry(t, append(args, "version")...)
		if err != nil || !strings.HasPrefix(out, "Client:") || !strings.Contains(out, "\nNote:       ") || strings.Contains(out, "Kubernetes:") {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	out, _, _ := execFerry(t, "--kubeconfig", kc, "version")
	if !strings.Contains(out, `server not reachable: get the Kubernetes version: cannot reach the API server https://127.0.0.1:1 of context "down"`) {
		t.Errorf("down:\n%s", out)
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"ferry.dev/ferry-gateway:v1.2.3":  "v1.2.3",
		"reg.example:5000/ferry/gw":       "-",
		"reg.example:5000/ferry/gw:v2":    "v2",
		"gw@sha256:0123456789abcdef01234": "sha256:0123456789ab…",
		"":                                "-",
	} {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}
