package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/internal/contract"

	"ferry.dev/ferry/internal/version"
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
	if r.Server == nil || r.Server.Controller == nil || r.Server.Controller.Version != eastImageTag || r.Note != "" || r.ClientCommit == "" {
		t.Errorf("-o json: %+v", r)
	}
}

// TestVersionSkew: the daemons run v9.9.9 (their image tag); a client one
// minor away is within the supported skew, two away is a warning on the
// table and on stderr with -o yaml, and a development build says the skew
// is unknown. Exit status 0 in every case.
func TestVersionSkew(t *testing.T) {
	installEast(t)
	old, oldCommit := version.Version, version.Commit
	t.Cleanup(func() { version.Version, version.Commit = old, oldCommit })
	version.Commit = "0123abcd"
	for _, c := range []struct {
		client, want string
	}{
		{"v9.8.0", "Skew:       within the supported skew (same major version, at most 1 minor apart)\n"},
		{"v9.11.2", "Warning:    client v9.11.2 and controller v9.9.9; client v9.11.2 and gateway v9.9.9 are more than 1 minor version apart, which is not supported: use a ferry CLI of the daemons' version"},
		{"dev", "Skew:       skew unknown: not both releases, nor one commit (client dev@0123abcd / controller v9.9.9; client dev@0123abcd / gateway v9.9.9)\n"},
	} {
		version.Version = c.client
		out := mustFerryOn(t, exporter, "version")
		if !strings.Contains(out, c.want) || !strings.Contains(out, "Client:     ferry "+c.client+" (go") || !strings.Contains(out, ", commit 0123abcd)") {
			t.Errorf("client %s: want %q in\n%s", c.client, c.want, out)
		}
	}
	version.Version = "v9.11.2"
	out, stderr, err := ferryOn(t, exporter, "version", "-o", "yaml")
	var r versionReport
	if err != nil || yaml.Unmarshal([]byte(out), &r) != nil || r.Skew == nil || r.Skew.Supported || !r.Skew.Known || r.ClientCommit != "0123abcd" {
		t.Errorf("-o yaml: %v %+v\n%s", err, r.Skew, out)
	}
	if !strings.HasPrefix(stderr, "Warning: client v9.11.2 and controller v9.9.9") {
		t.Errorf("stderr: %q", stderr)
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
	if !strings.Contains(out, `Note:       server version unknown, not reachable: get the Kubernetes version: cannot reach the API server https://127.0.0.1:1 of context "down"`) {
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

// TestVersionPodsUnreadable: a running controller pod whose /metrics the
// API server will not proxy (a loopback pod IP, which it refuses to dial)
// leaves the version to the Deployment's image tag, says why in the note,
// and still exits 0.
func TestVersionPodsUnreadable(t *testing.T) {
	installEast(t)
	c := clusterClient(t, exporter)
	// The pod the Deployment's template makes, as a kubelet would run it.
	var d appsv1.Deployment
	mustGet(t, c, contract.SystemNamespace, contract.ControllerName, &d)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: "ferry-controller-unreadable", Labels: d.Spec.Template.Labels},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
	create(t, c, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	if err := c.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	out := mustFerryOn(t, exporter, "version")
	for _, want := range []string{
		"Controller: " + eastImageTag + " (ferry.dev/ferry-controller:" + eastImageTag + ", 1/1 ready)\n",
		"Note:       ferry-controller: version from the image tag, the pods' metrics unreadable: ferry-controller-unreadable: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	var r versionReport
	if err := json.Unmarshal([]byte(mustFerryOn(t, exporter, "version", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if ctrl := r.Server.Controller; ctrl == nil || ctrl.Source != sourceImage || ctrl.Commit != "" || len(ctrl.Builds) != 0 {
		t.Errorf("-o json controller: %+v", ctrl)
	}
}
