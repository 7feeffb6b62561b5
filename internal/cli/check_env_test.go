package cli

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The shared clusters, one per role so that tests of one command never see
// another's objects:
//   - east: the exporter, with Ferry installed from install.Render (link,
//     export, version, the local gateway);
//   - west: an importer without a gateway (links, gateways' remotes, unlink);
//   - north: a complete, hand-built healthy install that `check` examines.
const (
	exporter = "east"
	importer = "west"
	checked  = "north"
)

// shared starts the three clusters on first use: one start (a few seconds)
// serves every test of the package that needs a cluster.
var shared = testenv.Lazy{Options: testenv.Options{
	Clusters: []string{exporter, importer, checked},
	// With the Gateway API's routes, as a cluster that steers clusterset
	// services has them.
	CRDs:        slices.Concat(install.CRDDocuments(), testenv.GatewayAPICRDs()),
	AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme, gwv1.Install},
}}

func TestMain(m *testing.M) {
	flag.Parse()
	shared.Main(m)
}

// clusterClient is the test's own client for a shared cluster.
func clusterClient(t *testing.T, name string) client.Client {
	t.Helper()
	return shared.Get(t).Cluster(name).Client
}

// ferryOn runs ferry against a shared cluster.
func ferryOn(t *testing.T, cluster string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env := shared.Get(t)
	return execFerry(t, append([]string{"--kubeconfig", env.Kubeconfig, "--context", cluster}, args...)...)
}

func mustFerryOn(t *testing.T, cluster string, args ...string) string {
	t.Helper()
	out, stderr, err := ferryOn(t, cluster, args...)
	if err != nil {
		t.Fatalf("ferry --context %s %s: %v\n%s", cluster, strings.Join(args, " "), err, stderr)
	}
	return out
}

// create creates objects, and deletes them when the test ends.
func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// oneLine asserts that err is a single line that contains want: what every
// user-caused error must be.
func oneLine(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded; want an error containing %q", want)
	}
	if msg := err.Error(); !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line containing %q", msg, want)
	}
}
