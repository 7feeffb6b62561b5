package install

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/monitoring"
)

// TestAlerts: Options.Alerts adds the PrometheusRule of internal/monitoring
// after everything else, changes nothing else, and renders as the golden
// testdata/alerts.yaml (the rule object alone; the rest is default.yaml).
func TestAlerts(t *testing.T) {
	o := testOptions(t)
	plain, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Alerts = true
	objs, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(plain)+1 {
		t.Fatalf("with alerts %d objects, without %d: want one more", len(objs), len(plain))
	}
	rule := objs[len(objs)-1]
	if gvk := rule.GetObjectKind().GroupVersionKind(); gvk.Group != "monitoring.coreos.com" || gvk.Kind != "PrometheusRule" {
		t.Fatalf("last object is a %v, want the PrometheusRule", gvk)
	}
	want, err := Unstructured(plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unstructured(objs[:len(plain)])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts changed other objects (-without +with):\n%s", diff)
	}
	if rule.GetNamespace() != "ferry-system" || rule.GetLabels()["app.kubernetes.io/part-of"] != partOf {
		t.Errorf("PrometheusRule %s/%s labels %v: want it in the install's namespace, labelled as Ferry's", rule.GetNamespace(), rule.GetName(), rule.GetLabels())
	}
	text, err := YAML([]client.Object{rule})
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, filepath.Join("testdata", "alerts.yaml"), text)
	if n := len(monitoring.Alerts()); n < 8 {
		t.Errorf("%d alerts", n)
	}
}

// TestHelmRendersAlerts: the chart's alerts.enabled renders what
// `ferry install --alerts` does, through Helm's engine, so the alerts'
// {{ $labels.x }} templates reach Prometheus unparsed by Helm.
func TestHelmRendersAlerts(t *testing.T) {
	ch := loadChart(t)
	rel, err := helmInstall(t, ch, requiredArgs("ferry.local", "east").with("alerts.enabled=true").values(t))
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	got := manifestObjects(t, rel.Manifest)
	o := Options{
		ClusterName:    "east",
		ImageTag:       ch.AppVersion(),
		IssuerCertPEM:  readFixture(t, "ferry.local", "east", "issuer.crt"),
		IssuerKeyPEM:   readFixture(t, "ferry.local", "east", "issuer.key"),
		TrustBundlePEM: readFixture(t, "ferry.local", "east", "bundle.crt"),
		Alerts:         true,
	}
	objs, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Unstructured(withoutCRDs(objs))
	if err != nil {
		t.Fatal(err)
	}
	sortObjects(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("helm with alerts.enabled and ferry install --alerts render different objects (-install +helm):\n%s", diff)
	}
}
