package install

import (
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// These tests read charts/ferry with Helm's own library (helm.sh/helm/v4,
// pinned in go.mod), so what they accept is what `helm lint` and
// `helm install` accept, not what a copy of Helm's functions would.

// helmArgs are the value flags of one `helm install` command line.
type helmArgs struct {
	set     []string // --set
	setFile []string // --set-file
}

// requiredArgs are the flags every install needs, as docs/install.md shows
// them: the cluster's name and its issuer files from `ferry identity
// issuer`, here the test fixtures.
func requiredArgs(mesh, cluster string) helmArgs {
	dir := fixtureDir(mesh, cluster)
	return helmArgs{
		set: []string{"clusterName=" + cluster},
		setFile: []string{
			"identity.issuerCert=" + filepath.Join(dir, "issuer.crt"),
			"identity.issuerKey=" + filepath.Join(dir, "issuer.key"),
			"identity.trustBundle=" + filepath.Join(dir, "bundle.crt"),
		},
	}
}

func (a helmArgs) with(set ...string) helmArgs {
	a.set = append(append([]string(nil), a.set...), set...)
	return a
}

// values parses the flags with Helm's own parser, so "3" is a number and
// "true" a boolean exactly as on the command line.
func (a helmArgs) values(t *testing.T) map[string]any {
	t.Helper()
	opts := values.Options{Values: a.set, FileValues: a.setFile}
	v, err := opts.MergeValues(nil)
	if err != nil {
		t.Fatalf("helm flags %v: %v", a, err)
	}
	return v
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartPath)
	if err != nil {
		t.Fatalf("helm cannot load %s: %v", chartPath, err)
	}
	return ch
}

// helmInstall runs `helm install --dry-run=client`, which is also what
// `helm template` runs: the values are checked against values.schema.json
// and the templates rendered by Helm's engine, with no cluster.
func helmInstall(t *testing.T, ch *chart.Chart, vals map[string]any) (*release.Release, error) {
	t.Helper()
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "ferry"
	install.Namespace = "ferry-system"
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("helm returned a %T, want a chart v2 release", rel)
	}
	return r, nil
}

// manifestObjects decodes a release's manifest, ordered by kind, namespace
// and name, since Helm orders objects by its own install order.
func manifestObjects(t *testing.T, manifest string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for name, doc := range releaseutil.SplitManifests(manifest) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("helm rendered invalid YAML in %s: %v\n%s", name, err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, m)
		}
	}
	sortObjects(objs)
	return objs
}

func sortObjects(objs []map[string]any) {
	key := func(m map[string]any) string {
		meta, _ := m["metadata"].(map[string]any)
		return strings.Join([]string{m["kind"].(string), stringOf(meta["namespace"]), stringOf(meta["name"])}, "/")
	}
	sort.Slice(objs, func(i, j int) bool { return key(objs[i]) < key(objs[j]) })
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// TestHelmLint lints the chart as `helm lint` does, with the required
// values, and fails on any message (stricter than --strict, which lets INFO
// pass) but the one INFO that Ferry cannot answer yet: it has no logo at a
// stable URL for Chart.yaml's icon.
func TestHelmLint(t *testing.T) {
	lint := action.NewLint()
	lint.Namespace = "ferry-system"

	res := lint.Run([]string{chartPath}, requiredArgs("ferry.local", "east").values(t))
	if res.TotalChartsLinted != 1 {
		t.Fatalf("helm did not lint %s: %v", chartPath, res.Errors)
	}
	for _, m := range res.Messages {
		if m.Severity == support.InfoSev && m.Path == "Chart.yaml" && strings.Contains(m.Err.Error(), "icon is recommended") {
			continue
		}
		t.Errorf("helm lint: %s", m)
	}

	// helm lint lets a missing required value pass (it renders in lint
	// mode), but not a value the schema refuses: if this passes, the
	// linter did not read the chart's values.
	res = lint.Run([]string{chartPath}, requiredArgs("ferry.local", "east").with("gateway.serviceType=Ingress").values(t))
	if !strings.Contains(errorsText(res.Errors), "/gateway/serviceType") {
		t.Errorf("helm lint with a bad serviceType: got %v, want a schema error", res.Errors)
	}
}

func errorsText(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

// TestHelmRendersLikeInstall installs the chart (client-only) with Helm and
// compares every object with Render's for the same settings given to
// `ferry install`; each case sets what a user would type on each side.
func TestHelmRendersLikeInstall(t *testing.T) {
	ch := loadChart(t)
	appVersion := ch.AppVersion()
	const (
		ctlImage = "example.com/ctl@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		gwImage  = "example.com/gw:custom"
	)
	cases := []struct {
		name    string
		mesh    string // the issuer fixture; "" is ferry.local
		cluster string // "" is east
		set     []string
		opts    func(*Options)
		// noNamespace: the release leaves the Namespace out.
		noNamespace bool
	}{
		// The chart's image tag defaults to its appVersion, as ferry
		// install's defaults to its build's.
		{name: "defaults", opts: func(o *Options) { o.ImageTag = appVersion }},
		{
			name: "registry-tag-replicas-nodeport",
			set: []string{"image.registry=registry.example.com/mirror", "image.tag=v2.3.4",
				"controller.replicas=2", "gateway.replicas=3", "gateway.serviceType=NodePort"},
			opts: func(o *Options) {
				o.Registry, o.ImageTag = "registry.example.com/mirror", "v2.3.4"
				o.ControllerReplicas, o.GatewayReplicas = 2, 3
				o.GatewayServiceType = corev1.ServiceTypeNodePort
			},
		},
		{
			name: "images-clusterip-egress-coredns",
			set: []string{"controller.image=" + ctlImage, "gateway.image=" + gwImage,
				"gateway.serviceType=ClusterIP", "egressPorts=56000-56999",
				"coredns.serviceAccount.namespace=dns", "coredns.serviceAccount.name=kube-dns"},
			opts: func(o *Options) {
				o.ImageTag = appVersion
				o.ControllerImage, o.GatewayImage = ctlImage, gwImage
				o.GatewayServiceType = corev1.ServiceTypeClusterIP
				o.EgressPorts = "56000-56999"
				o.CoreDNSServiceAccount = "dns/kube-dns"
			},
		},
		{
			name: "no-namespace", noNamespace: true,
			set:  []string{"installNamespace=false"},
			opts: func(o *Options) { o.ImageTag = appVersion },
		},
		{
			name: "mesh-domain", mesh: "corp.example",
			set:  []string{"meshDomain=corp.example"},
			opts: func(o *Options) { o.ImageTag, o.MeshDomain = appVersion, "corp.example" },
		},
		{name: "west", cluster: "west", opts: func(o *Options) { o.ImageTag = appVersion }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mesh, cluster := or(c.mesh, "ferry.local"), or(c.cluster, "east")
			rel, err := helmInstall(t, ch, requiredArgs(mesh, cluster).with(c.set...).values(t))
			if err != nil {
				t.Fatalf("helm install: %v", err)
			}
			got := manifestObjects(t, rel.Manifest)

			o := optionsFor(t, mesh, cluster)
			o.ImageTag = "" // each case says what the chart's values make it
			c.opts(&o)
			objs, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Unstructured(withoutCRDs(objs))
			if err != nil {
				t.Fatal(err)
			}
			if c.noNamespace {
				want = slicesWithout(want, "Namespace")
			}
			sortObjects(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("helm and ferry install render different objects (-install +helm):\n%s", diff)
			}
			if !strings.Contains(rel.Info.Notes, "for cluster "+cluster+" ") {
				t.Errorf("NOTES.txt does not name cluster %s:\n%s", cluster, rel.Info.Notes)
			}
		})
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func slicesWithout(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["kind"] != kind {
			out = append(out, o)
		}
	}
	return out
}

// TestHelmInstallsTheCRDs checks that the CRDs Helm installs from crds/
// (before the templates, and never on uninstall) are Render's.
func TestHelmInstallsTheCRDs(t *testing.T) {
	var got []map[string]any
	for _, crd := range loadChart(t).CRDObjects() {
		var m map[string]any
		if err := yaml.Unmarshal(crd.File.Data, &m); err != nil {
			t.Fatalf("%s: %v", crd.Filename, err)
		}
		delete(m, "status")
		dropNullTimestamps(m)
		got = append(got, m)
	}
	crdObjs, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Unstructured(crdObjs)
	if err != nil {
		t.Fatal(err)
	}
	sortObjects(got)
	sortObjects(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the chart's crds/ are not Render's CRDs (-install +chart):\n%s", diff)
	}
}

// TestHelmRefusesBadValues runs `helm install` with values a user could
// mistype and wants the error to name the field. For the schema's cases it
// also installs with the schema removed, which must then succeed: that
// value would reach the cluster (or be silently ignored) but for
// values.schema.json.
func TestHelmRefusesBadValues(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name string
		args helmArgs
		// want are substrings of the error.
		want []string
		// bySchema: values.schema.json, not the templates, refuses it.
		bySchema bool
	}{
		{"cluster name not a DNS label", requiredArgs("ferry.local", "east").with("clusterName=East_1"),
			[]string{"/clusterName", "East_1"}, true},
		{"no replicas", requiredArgs("ferry.local", "east").with("gateway.replicas=0"),
			[]string{"/gateway/replicas", "minimum"}, true},
		{"replicas not a number", requiredArgs("ferry.local", "east").with("controller.replicas=two"),
			[]string{"/controller/replicas", "integer"}, true},
		{"service type", requiredArgs("ferry.local", "east").with("gateway.serviceType=Ingress"),
			[]string{"/gateway/serviceType", "LoadBalancer"}, true},
		{"misspelled key", requiredArgs("ferry.local", "east").with("gatway.replicas=3"),
			[]string{"gatway"}, true},
		{"egress ports", requiredArgs("ferry.local", "east").with("egressPorts=1-2-3"),
			[]string{"/egressPorts", "1-2-3"}, true},
		{"registry with a trailing slash", requiredArgs("ferry.local", "east").with("image.registry=example.com/"),
			[]string{"/image/registry"}, true},
		{"issuer path where --set-file was meant", helmArgs{
			set:     []string{"clusterName=east", "identity.issuerCert=east/issuer.crt"},
			setFile: withoutPrefix(requiredArgs("ferry.local", "east").setFile, "identity.issuerCert="),
		},
			[]string{"/identity/issuerCert", "east/issuer.crt"}, true},
		{"no cluster name", helmArgs{setFile: requiredArgs("ferry.local", "east").setFile},
			[]string{"clusterName is required: --set clusterName=NAME"}, false},
		{"no issuer key", helmArgs{set: []string{"clusterName=east"}, setFile: withoutPrefix(requiredArgs("ferry.local", "east").setFile, "identity.issuerKey=")},
			[]string{"identity.issuerKey is required"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := c.args.values(t)
			_, err := helmInstall(t, ch, vals)
			if err == nil {
				t.Fatalf("helm install accepted %v", c.args.set)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("helm install error does not say %q:\n%v", w, err)
				}
			}
			if c.bySchema {
				if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
					t.Errorf("refused, but not by the schema:\n%v", err)
				}
				noSchema := loadChart(t)
				noSchema.Schema = nil
				if _, err := helmInstall(t, noSchema, c.args.values(t)); err != nil {
					t.Errorf("without values.schema.json helm still refuses it, so this case does not test the schema: %v", err)
				}
			}
		})
	}
}

func withoutPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if !strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
