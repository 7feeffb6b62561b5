package install

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/version"
)

// goldenCase is one combination of options that changes the output. The
// "default" golden holds the whole stream; the others leave out the CRDs,
// which no option changes (TestCRDsAreTheModules checks them).
type goldenCase struct {
	name string
	mod  func(*Options)
}

func goldenCases(t testing.TB) []goldenCase {
	return []goldenCase{
		{"default", func(*Options) {}},
		{"service-nodeport", func(o *Options) { o.GatewayServiceType = corev1.ServiceTypeNodePort }},
		{"service-clusterip", func(o *Options) { o.GatewayServiceType = "clusterip" }},
		{"replicas", func(o *Options) { o.GatewayReplicas, o.ControllerReplicas = 3, 2 }},
		{"registry-tag", func(o *Options) { o.Registry, o.ImageTag = "registry.example.com/mirror", "v2.3.4" }},
		{"images", func(o *Options) {
			o.ControllerImage = "example.com/ctl@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			o.GatewayImage = "example.com/gw:custom"
		}},
		{"mesh-domain", func(o *Options) { *o = optionsFor(t, "corp.example", "east"); o.MeshDomain = "corp.example" }},
		{"egress-ports", func(o *Options) { o.EgressPorts = "56000-56999" }},
		{"west", func(o *Options) { *o = optionsFor(t, "ferry.local", "west") }},
	}
}

func renderCase(t testing.TB, c goldenCase) []client.Object {
	t.Helper()
	o := testOptions(t)
	c.mod(&o)
	objs, err := Render(o)
	if err != nil {
		t.Fatalf("%s: Render: %v", c.name, err)
	}
	if c.name != "default" {
		objs = withoutCRDs(objs)
	}
	return objs
}

func withoutCRDs(objs []client.Object) []client.Object {
	var out []client.Object
	for _, o := range objs {
		if _, ok := o.(*apiextensionsv1.CustomResourceDefinition); !ok {
			out = append(out, o)
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	seen := map[string]string{}
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, err := YAML(renderCase(t, c))
			if err != nil {
				t.Fatal(err)
			}
			if prev, dup := seen[string(got)]; dup {
				t.Errorf("case %s renders the same as %s: it covers nothing new", c.name, prev)
			}
			seen[string(got)] = c.name
			compareGolden(t, filepath.Join("testdata", c.name+".yaml"), got)
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/install -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered output (run go test ./internal/install -update and review the diff) (-golden +rendered):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

func TestOrder(t *testing.T) {
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		k := o.GetObjectKind().GroupVersionKind().Kind
		if len(kinds) == 0 || kinds[len(kinds)-1] != k {
			kinds = append(kinds, k)
		}
	}
	want := "Namespace CustomResourceDefinition ServiceAccount ClusterRole Role ClusterRoleBinding RoleBinding Secret NetworkPolicy Deployment Service PodDisruptionBudget"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("kinds in order:\n got %s\nwant %s", got, want)
	}
}

func TestImageTagDefaultsToVersion(t *testing.T) {
	o := testOptions(t)
	o.ImageTag = ""
	s, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if want := "ferry.dev/ferry-gateway:" + version.Version; s.gatewayImage != want {
		t.Errorf("gateway image %q, want %q", s.gatewayImage, want)
	}
}

func TestCRDsAreTheModules(t *testing.T) {
	objs, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	want := "links.ferry.dev serviceexports.multicluster.x-k8s.io serviceimports.multicluster.x-k8s.io"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("CRDs %s, want %s", got, want)
	}
}

func TestInventoryIsReverseOrder(t *testing.T) {
	inv, err := Inventory()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != len(objs) {
		t.Fatalf("inventory has %d objects, render %d", len(inv), len(objs))
	}
	for i, o := range objs {
		r := inv[len(inv)-1-i]
		if r.GetName() != o.GetName() || r.GetNamespace() != o.GetNamespace() ||
			r.GetObjectKind().GroupVersionKind() != o.GetObjectKind().GroupVersionKind() {
			t.Errorf("inventory[%d] = %v %s/%s, want %v %s/%s", len(inv)-1-i,
				r.GetObjectKind().GroupVersionKind(), r.GetNamespace(), r.GetName(),
				o.GetObjectKind().GroupVersionKind(), o.GetNamespace(), o.GetName())
		}
	}
}
