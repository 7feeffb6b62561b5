package install

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
)

var (
	update         = flag.Bool("update", false, "rewrite golden files (testdata, docs/rbac.md's rule table)")
	updateFixtures = flag.Bool("update-fixtures", false, "regenerate the issuer fixtures in testdata/identity (then run -update)")
)

// The golden files embed issuer fixtures, so the fixtures are committed
// rather than made per run (keys are random). They are valid for a century:
// the issuer's validity is checked against the real clock.
const fixtureValidity = 100 * 365 * 24 * time.Hour

func fixtureDir(mesh, cluster string) string {
	return filepath.Join("testdata", "identity", mesh, cluster)
}

// fixtureMeshes are the (mesh, clusters) the tests use.
var fixtureMeshes = map[string][]string{
	"ferry.local":  {"east", "west"},
	"corp.example": {"east"},
}

func TestGenerateIdentityFixtures(t *testing.T) {
	if !*updateFixtures {
		t.Skip("run with -update-fixtures to regenerate")
	}
	for mesh, clusters := range fixtureMeshes {
		root, err := identity.NewRoot(mesh, fixtureValidity)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := identity.NewBundle(mesh, root.Cert)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range clusters {
			iss, err := root.NewIssuer(c, fixtureValidity-24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			key, err := iss.KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			dir := fixtureDir(mesh, c)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range map[string][]byte{"issuer.crt": iss.CertPEM(), "issuer.key": key, "bundle.crt": bundle.PEM()} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func readFixture(t testing.TB, mesh, cluster, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(mesh, cluster), name))
	if err != nil {
		t.Fatalf("fixture: %v (run go test -run TestGenerateIdentityFixtures -update-fixtures)", err)
	}
	return b
}

// testOptions are the options of the default golden file: cluster east of
// mesh ferry.local, with a fixed image tag so goldens do not depend on the
// build's version.
func testOptions(t testing.TB) Options {
	return optionsFor(t, "ferry.local", "east")
}

func optionsFor(t testing.TB, mesh, cluster string) Options {
	return Options{
		ClusterName:    cluster,
		ImageTag:       "v1.0.0",
		IssuerCertPEM:  readFixture(t, mesh, cluster, "issuer.crt"),
		IssuerKeyPEM:   readFixture(t, mesh, cluster, "issuer.key"),
		TrustBundlePEM: readFixture(t, mesh, cluster, "bundle.crt"),
	}
}
