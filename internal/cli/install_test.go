package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/install"
)

// execFerry runs the real command tree with buffers, as main would.
func execFerry(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, args...)
}

// issuerDir runs `ferry identity init` and `ferry identity issuer` for
// cluster, so the install tests also check that install reads what the
// identity commands write.
func issuerDir(t *testing.T, cluster string) string {
	t.Helper()
	dir := t.TempDir()
	root, out := filepath.Join(dir, "mesh-ca"), filepath.Join(dir, cluster)
	for _, args := range [][]string{
		{"identity", "init", "--out", root},
		{"identity", "issuer", "--cluster", cluster, "--root-dir", root, "--out", out},
	} {
		if _, stderr, err := execFerry(t, args...); err != nil {
			t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
	}
	return out
}

func TestInstallFromIdentityDir(t *testing.T) {
	dir := issuerDir(t, "east")
	stdout, stderr, err := execFerry(t, "install", "--cluster-name", "east", "--identity-dir", dir, "--image-tag", "v1.0.0")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, stderr)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	objs, err := install.Render(install.Options{
		ClusterName: "east", ImageTag: "v1.0.0",
		IssuerCertPEM: read("issuer.crt"), IssuerKeyPEM: read("issuer.key"), TrustBundlePEM: read("bundle.crt"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := install.YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("ferry install prints something other than install.Render's objects")
	}
	if !strings.HasPrefix(stdout, "---\napiVersion: v1\nkind: Namespace\n") {
		t.Errorf("output does not start with the Namespace:\n%.200s", stdout)
	}
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}

	// Explicit files, without --identity-dir, and JSON.
	stdout, _, err = execFerry(t, "install", "--cluster-name", "east", "-o", "json",
		"--issuer-cert", filepath.Join(dir, "issuer.crt"), "--issuer-key", filepath.Join(dir, "issuer.key"),
		"--trust-bundle", filepath.Join(dir, "bundle.crt"))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("-o json: %v", err)
	}
	if list.Kind != "List" || len(list.Items) != len(objs) {
		t.Errorf("-o json: kind %q with %d items, want List with %d", list.Kind, len(list.Items), len(objs))
	}
}

func TestInstallFlagsReachTheObjects(t *testing.T) {
	dir := issuerDir(t, "west")
	stdout, stderr, err := execFerry(t, "install", "--cluster-name", "west", "--identity-dir", dir,
		"--gateway-service-type", "nodeport", "--gateway-replicas", "3", "--controller-replicas", "2",
		"--image-registry", "reg.example/ferry", "--image-tag", "v9", "--gateway-image", "gw.example/gw:1",
		"--egress-ports", "56000-56100", "--mesh-domain", "ferry.local")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{
		"type: NodePort", "replicas: 3", "replicas: 2", "image: reg.example/ferry/ferry-controller:v9",
		"image: gw.example/gw:1", "--egress-port-range=56000-56100", "--cluster-name=west", "--mesh-domain=ferry.local",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestInstallImageRegistry: --image-registry is the name, and --registry,
// its first name, still sets the same thing, with a deprecation notice on
// stderr (never in the manifests on stdout) and no mention in help.
func TestInstallImageRegistry(t *testing.T) {
	dir := issuerDir(t, "west")
	for _, tc := range []struct {
		flag, wantStderr string
	}{
		{"--image-registry", ""},
		{"--registry", "Flag --registry has been deprecated, use --image-registry\n"},
	} {
		stdout, stderr, err := execFerry(t, "install", "--cluster-name", "west", "--identity-dir", dir,
			tc.flag, "reg.example/team", "--image-tag", "v9")
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.flag, err, stderr)
		}
		for _, want := range []string{"image: reg.example/team/ferry-controller:v9", "image: reg.example/team/ferry-gateway:v9"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: output lacks %q", tc.flag, want)
			}
		}
		if stderr != tc.wantStderr || strings.Contains(stdout, "deprecated") {
			t.Errorf("%s: stderr %q, want %q; the manifests must not carry the notice", tc.flag, stderr, tc.wantStderr)
		}
	}
	if _, _, err := execFerry(t, "install", "--cluster-name", "west", "--identity-dir", dir,
		"--registry", "a.example", "--image-registry", "b.example"); err == nil || !strings.Contains(err.Error(), "give only --image-registry") {
		t.Errorf("both names: %v", err)
	}
	// The templates read the JSON form, one v1 List.
	kinds, _, err := execFerry(t, "install", "--cluster-name", "west", "--identity-dir", dir,
		"-o", `jsonpath={.kind} {.items[?(@.kind=="Deployment")].metadata.name}`)
	if err != nil || kinds != "List ferry-controller ferry-gateway" {
		t.Errorf("-o jsonpath: %q (%v)", kinds, err)
	}
	help, _, err := execFerry(t, "install", "--help")
	if err != nil || !strings.Contains(help, "--image-registry string") || strings.Contains(help, "--registry ") {
		t.Errorf("help (%v):\n%s", err, help)
	}
}

// TestInstallErrors: every mistake a user can make gives one line that says
// what to do.
func TestInstallErrors(t *testing.T) {
	east := issuerDir(t, "east")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no cluster name", []string{"--identity-dir", east}, "--cluster-name is required"},
		{"bad cluster name", []string{"--cluster-name", "East!", "--identity-dir", east}, `cluster name "East!"`},
		{"no identity", []string{"--cluster-name", "east"}, "missing issuer material (--issuer-cert, --issuer-key, --trust-bundle): pass --identity-dir"},
		{"empty identity dir", []string{"--cluster-name", "east", "--identity-dir", t.TempDir()}, "does not exist (make it with `ferry identity issuer --cluster east`"},
		{"missing key file", []string{"--cluster-name", "east", "--identity-dir", east, "--issuer-key", "/nonexistent/k"}, "--issuer-key: /nonexistent/k does not exist"},
		{"wrong cluster", []string{"--cluster-name", "west", "--identity-dir", east}, "the issuer is for trust domain east.ferry.local"},
		{"bad service type", []string{"--cluster-name", "east", "--identity-dir", east, "--gateway-service-type", "External"}, `gateway service type "External": want LoadBalancer, NodePort or ClusterIP`},
		{"bad output", []string{"--cluster-name", "east", "--identity-dir", east, "-o", "xml"}, `unknown output format "xml": use yaml, json, jsonpath=TEMPLATE`},
		{"bad ports", []string{"--cluster-name", "east", "--identity-dir", east, "--egress-ports", "1-2"}, "below 1024"},
		{"zero replicas is default, negative is not", []string{"--cluster-name", "east", "--identity-dir", east, "--gateway-replicas", "-1"}, "gateway replicas -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, _, err := execFerry(t, append([]string{"install"}, c.args...)...)
			if err == nil {
				t.Fatal("install succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want it to contain %q", msg, c.want)
			}
			if strings.Contains(msg, "\n") || strings.HasPrefix(msg, "invalid install options") {
				t.Errorf("error %q: want one line without the package's prefix", msg)
			}
			if stdout != "" {
				t.Errorf("printed manifests despite the error")
			}
		})
	}
}

// TestInstallAlerts: --alerts adds the PrometheusRule that install.Render
// adds for Options.Alerts, and only then.
func TestInstallAlerts(t *testing.T) {
	dir := issuerDir(t, "east")
	without, _, err := execFerry(t, "install", "--cluster-name", "east", "--identity-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	with, _, err := execFerry(t, "install", "--cluster-name", "east", "--identity-dir", dir, "--alerts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(without, "kind: PrometheusRule") || !strings.Contains(with, "\nkind: PrometheusRule\n") {
		t.Errorf("PrometheusRule: without --alerts %v, with %v", strings.Contains(without, "kind: PrometheusRule"), strings.Contains(with, "kind: PrometheusRule"))
	}
}
