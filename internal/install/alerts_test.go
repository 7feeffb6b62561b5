package install

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/monitoring"
)

// TestAlerts: Options.Alerts adds the PrometheusRule of internal/monitoring
// and the PodMonitor that feeds it after everything else, changes nothing
// else, and renders as the golden testdata/alerts.yaml (those two objects;
// the rest is default.yaml).
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
	if len(objs) != len(plain)+2 {
		t.Fatalf("with alerts %d objects, without %d: want two more", len(objs), len(plain))
	}
	rule, monitor := objs[len(objs)-2], objs[len(objs)-1]
	if gvk := rule.GetObjectKind().GroupVersionKind(); gvk.Group != "monitoring.coreos.com" || gvk.Kind != "PrometheusRule" {
		t.Fatalf("next to last object is a %v, want the PrometheusRule", gvk)
	}
	if gvk := monitor.GetObjectKind().GroupVersionKind(); gvk.Group != "monitoring.coreos.com" || gvk.Kind != "PodMonitor" {
		t.Fatalf("last object is a %v, want the PodMonitor", gvk)
	}
	// The operator names the monitor's job <namespace>/<name>; the alerts on
	// the scrape itself select that job.
	if job := monitor.GetNamespace() + "/" + monitor.GetName(); job != monitoring.ScrapeJob {
		t.Errorf("PodMonitor's job is %s, the alerts select %s", job, monitoring.ScrapeJob)
	}
	assertPodMonitorSelectsDaemons(t, monitor, plain)
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
	text, err := YAML([]client.Object{rule, monitor})
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
	o := testOptions(t)
	o.ImageTag, o.Alerts = ch.AppVersion(), true
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

// assertPodMonitorSelectsDaemons: the PodMonitor's selector matches both
// Deployments' pods, and each names the port it scrapes.
func assertPodMonitorSelectsDaemons(t *testing.T, monitor client.Object, objs []client.Object) {
	t.Helper()
	u, err := Unstructured([]client.Object{monitor})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := u[0]["spec"].(map[string]any)
	sel, _ := spec["selector"].(map[string]any)
	match, _ := sel["matchLabels"].(map[string]any)
	eps, _ := spec["podMetricsEndpoints"].([]any)
	if len(match) == 0 || len(eps) != 1 {
		t.Fatalf("PodMonitor spec %v: want matchLabels and one endpoint", spec)
	}
	port, _ := eps[0].(map[string]any)["port"].(string)
	var daemons int
	for _, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		daemons++
		for k, v := range match {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("PodMonitor selects %s=%v; Deployment %s's pods have %q", k, v, d.Name, d.Spec.Template.Labels[k])
			}
		}
		var named bool
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			named = named || p.Name == port
		}
		if !named {
			t.Errorf("PodMonitor scrapes port %q; Deployment %s's container has no such port", port, d.Name)
		}
	}
	if daemons != 2 {
		t.Errorf("%d Deployments rendered, want the controller's and the gateway's", daemons)
	}
}
