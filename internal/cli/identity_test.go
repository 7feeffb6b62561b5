package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// runFerry runs the real command tree with buffers, as main would.
func runFerry(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return Run(context.Background(), args...)
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := runFerry(t, args...)
	if err != nil {
		t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode %v, want %v", path, got, want)
	}
}

func TestIdentityInitAndIssuer(t *testing.T) {
	dir := t.TempDir()
	caDir, eastDir := filepath.Join(dir, "ca"), filepath.Join(dir, "clusters", "east")
	mustRun(t, "identity", "init", "--mesh-domain", "corp.example", "--out", caDir)
	mustRun(t, "identity", "issuer", "--cluster", "east", "--root-dir", caDir, "--out", eastDir, "--validity", "720h")

	assertMode(t, caDir, 0o700)
	assertMode(t, eastDir, 0o700)
	assertMode(t, filepath.Join(caDir, "ca.key"), 0o600)
	assertMode(t, filepath.Join(eastDir, "issuer.key"), 0o600)
	assertMode(t, filepath.Join(caDir, "ca.crt"), 0o644)
	assertMode(t, filepath.Join(eastDir, "bundle.crt"), 0o644)

	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	issuer, bundle, err := identity.LoadIssuer(read(filepath.Join(eastDir, "issuer.crt")),
		read(filepath.Join(eastDir, "issuer.key")), read(filepath.Join(eastDir, "bundle.crt")))
	if err != nil {
		t.Fatalf("written issuer does not load: %v", err)
	}
	if td, _ := issuer.TrustDomain(); td != "east.corp.example" {
		t.Errorf("issuer trust domain %q", td)
	}
	if got := issuer.Cert.NotAfter.Sub(issuer.Cert.NotBefore); got < 719*time.Hour || got > 721*time.Hour {
		t.Errorf("--validity ignored: issuer lives %s", got)
	}
	leaf, err := issuer.IssueLeaf(contract.GatewayID("corp.example", "east"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (identity.Verifier{Bundle: bundle, Role: identity.PeerServer}).VerifyRaw(leaf.Certificate); err != nil {
		t.Fatalf("leaf from the written issuer does not verify against the written bundle: %v", err)
	}

	// Default --out is the cluster name, relative to the working directory.
	t.Chdir(dir)
	mustRun(t, "identity", "issuer", "--cluster", "west", "--root-dir", caDir)
	if _, err := os.Stat(filepath.Join(dir, "west", "issuer.crt")); err != nil {
		t.Errorf("default --out: %v", err)
	}
}

func TestIdentityRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "identity", "init", "--out", dir)
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))

	_, _, err := runFerry(t, "identity", "init", "--out", dir)
	if err == nil || !strings.Contains(err.Error(), "--force") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second init: %v; want a one-line error mentioning --force", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(before, after) {
		t.Fatal("refused init still replaced the key")
	}
	mustRun(t, "identity", "init", "--out", dir, "--force")
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); bytes.Equal(before, after) {
		t.Fatal("--force did not replace the key")
	}
	assertMode(t, filepath.Join(dir, "ca.key"), 0o600)

	// One existing target blocks all writes: no new key beside an old bundle.
	east := filepath.Join(dir, "east")
	if err := os.MkdirAll(east, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(east, "bundle.crt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runFerry(t, "identity", "issuer", "--cluster", "east", "--root-dir", dir, "--out", east); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("issuer over existing bundle: %v", err)
	}
	if _, err := os.Stat(filepath.Join(east, "issuer.key")); !os.IsNotExist(err) {
		t.Fatal("refused issuer command still wrote issuer.key")
	}
	entries, _ := os.ReadDir(east)
	if len(entries) != 1 {
		t.Errorf("refused command left files behind: %v", entries)
	}
}

func TestIdentityIssuerErrors(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "identity", "init", "--out", dir, "--validity", "48h")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"identity", "issuer", "--root-dir", dir}, "--cluster is required"},
		{[]string{"identity", "issuer", "--cluster", "East_1", "--root-dir", dir}, "cluster name"},
		{[]string{"identity", "issuer", "--cluster", "east", "--root-dir", filepath.Join(dir, "nope")}, "ferry identity init"},
		{[]string{"identity", "issuer", "--cluster", "east", "--root-dir", dir, "--validity", "72h"}, "outlives"},
		{[]string{"identity", "init", "--mesh-domain", "Not Valid", "--out", filepath.Join(dir, "x")}, "mesh domain"},
		{[]string{"identity", "inspect", filepath.Join(dir, "missing.crt")}, "no such file"},
	} {
		_, _, err := runFerry(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ferry %s: %v; want a one-line error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestIdentityExtraRoots(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	mustRun(t, "identity", "init", "--out", oldCA)
	mustRun(t, "identity", "init", "--out", newCA)
	mustRun(t, "identity", "issuer", "--cluster", "east", "--root-dir", newCA, "--out", filepath.Join(dir, "east"),
		"--extra-roots", filepath.Join(oldCA, "ca.crt"))
	data, _ := os.ReadFile(filepath.Join(dir, "east", "bundle.crt"))
	b, err := identity.ParseBundle(contract.DefaultMeshDomain, data)
	if err != nil || len(b.Roots()) != 2 {
		t.Fatalf("bundle during rotation: %v, want 2 roots", err)
	}
}

func inspectAt(t *testing.T, now time.Time, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newIdentityCommandAt(func() time.Time { return now }, genericclioptions.NewConfigFlags(true))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"inspect"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func TestIdentityInspect(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2031, 3, 4, 12, 0, 0, 0, time.UTC)
	root, err := identity.NewRoot("ferry.local", 0, identity.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := root.NewIssuer("east", 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := issuer.IssueLeaf(contract.GatewayID("ferry.local", "east"), 0)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := identity.EncodeLeafPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	leafPath, keyPath, issuerPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "issuer.crt")
	for p, b := range map[string][]byte{leafPath: certPEM, keyPath: keyPEM, issuerPath: issuer.CertPEM()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	text, err := inspectAt(t, now.Add(time.Hour), leafPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Kind:             leaf",
		"SPIFFE ID:        spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
		"Trust domain:     east.ferry.local",
		"Ext key usage:    serverAuth, clientAuth",
		"Time left:        23h0m",
		"Kind:             issuer", // the chain's second certificate
		"permit URI:     east.ferry.local",
		"exclude DNS:    (all)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, text)
		}
	}
	if text, _ := inspectAt(t, now.Add(25*time.Hour), leafPath); !strings.Contains(text, "EXPIRED 1h0m ago") {
		t.Errorf("expired leaf not flagged:\n%s", text)
	}

	js, err := inspectAt(t, now, "-o", "json", issuerPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Certificates []identity.Description `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, js)
	}
	if len(doc.Certificates) != 1 || doc.Certificates[0].Kind != "issuer" || doc.Certificates[0].Cluster != "east" ||
		doc.Certificates[0].NameConstraints == nil || !doc.Certificates[0].NameConstraints.Critical {
		t.Errorf("json description: %+v", doc.Certificates)
	}
	if got, want := doc.Certificates[0].TimeLeftSeconds, int64(identity.DefaultIssuerValidity/time.Second); got != want {
		t.Errorf("timeLeftSeconds %d, want %d", got, want)
	}

	ys, err := inspectAt(t, now, "-o", "yaml", leafPath)
	if err != nil {
		t.Fatal(err)
	}
	doc.Certificates = nil
	if err := yaml.Unmarshal([]byte(ys), &doc); err != nil || len(doc.Certificates) != 2 ||
		doc.Certificates[0].SPIFFEID != contract.GatewayID("ferry.local", "east").String() {
		t.Errorf("yaml: %v %+v", err, doc.Certificates)
	}

	if _, err := inspectAt(t, now, "-o", "xml", leafPath); err == nil || !strings.Contains(err.Error(), "json or yaml") {
		t.Errorf("unknown format: %v", err)
	}
	out, err := inspectAt(t, now, keyPath)
	if err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("inspect of a key file: %v", err)
	}
	if strings.Contains(out+err.Error(), string(keyPEM[30:60])) {
		t.Error("inspect printed key material")
	}
}
