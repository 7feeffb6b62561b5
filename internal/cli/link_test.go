package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
)

const (
	eastGatewayIP = "198.18.0.10"
	eastImageTag  = "v9.9.9"
)

var eastOnce sync.Once

// installEast applies what `ferry install` renders for east (but the CRDs,
// which testenv installed), then plays the parts of the load balancer, the
// Deployment controller and the EndpointSlice controller that testenv lacks.
func installEast(t *testing.T) {
	t.Helper()
	c := clusterClient(t, exporter)
	eastOnce.Do(func() {
		ctx := context.Background()
		root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
		if err != nil {
			t.Fatal(err)
		}
		issuer, err := root.NewIssuer(exporter, 0)
		if err != nil {
			t.Fatal(err)
		}
		key, err := issuer.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		objs, err := install.Render(install.Options{ClusterName: exporter, ImageTag: eastImageTag,
			IssuerCertPEM: issuer.CertPEM(), IssuerKeyPEM: key, TrustBundlePEM: root.CertPEM()})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetObjectKind().GroupVersionKind().Kind == "CustomResourceDefinition" {
				continue
			}
			if err := c.Create(ctx, o); err != nil {
				t.Fatalf("install %T %s: %v", o, o.GetName(), err)
			}
		}
		var svc corev1.Service
		mustGet(t, c, contract.SystemNamespace, contract.GatewayName, &svc)
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: eastGatewayIP}}
		if err := c.Status().Update(ctx, &svc); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{contract.GatewayName, contract.ControllerName} {
			var d appsv1.Deployment
			mustGet(t, c, contract.SystemNamespace, name, &d)
			d.Status = appsv1.DeploymentStatus{Replicas: *d.Spec.Replicas, ReadyReplicas: *d.Spec.Replicas, AvailableReplicas: *d.Spec.Replicas}
			if err := c.Status().Update(ctx, &d); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Create(ctx, gatewaySlice([]string{"198.18.1.1", "198.18.1.2"}, true)); err != nil {
			t.Fatal(err)
		}
	})
}

// gatewaySlice is the EndpointSlice kube-controller-manager would write for
// the gateway pods.
func gatewaySlice(addrs []string, ready bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: contract.GatewayName + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: contract.GatewayName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("ingress"), Port: ptr.To(int32(contract.IngressPort))}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	return s
}

func mustGet(t *testing.T, c client.Client, ns, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, ns, name, err)
	}
}

func TestLink(t *testing.T) {
	installEast(t)
	env := shared.Get(t)
	out := mustFerryOn(t, exporter, "link", "--cluster-name", exporter)

	var doc map[string]any
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(out, "---\n")), &doc); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	var link ferryv1.Link
	if err := yaml.Unmarshal([]byte(out[len("---\n"):]), &link); err != nil {
		t.Fatal(err)
	}
	want := ferryv1.LinkSpec{
		ClusterName:      exporter,
		GatewayAddresses: []string{eastGatewayIP + ":4143"},
		GatewayIdentity:  "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
	}
	if link.Kind != "Link" || link.Name != exporter || link.Namespace != contract.SystemNamespace ||
		link.Spec.ClusterName != want.ClusterName || strings.Join(link.Spec.GatewayAddresses, ",") != strings.Join(want.GatewayAddresses, ",") ||
		link.Spec.GatewayIdentity != want.GatewayIdentity {
		t.Errorf("link:\n%s\nwant spec %+v", out, want)
	}

	// Nothing but the gateway's address and identity: no API server, no
	// credential. Keys are checked exhaustively, and the kubeconfig's
	// secrets and server are looked for in the text.
	assertKeys(t, "link", doc, "apiVersion", "kind", "metadata", "spec")
	assertKeys(t, "metadata", doc["metadata"].(map[string]any), "name", "namespace")
	assertKeys(t, "spec", doc["spec"].(map[string]any), "clusterName", "gatewayAddresses", "gatewayIdentity")
	cfg := env.Cluster(exporter).RestConfig
	host := strings.TrimPrefix(strings.TrimPrefix(cfg.Host, "https://"), "http://")
	for _, secret := range []string{host, cfg.BearerToken, string(cfg.CertData), string(cfg.KeyData), string(cfg.CAData), "token", "server", "certificate"} {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("link output contains %.40q", secret)
		}
	}

	// The importer's API server accepts it as is.
	west := clusterClient(t, importer)
	ensureNamespace(t, west, contract.SystemNamespace)
	create(t, west, &link)

	// -o json, and addresses given by hand (a bare host gets port 4143).
	out = mustFerryOn(t, exporter, "link", "--cluster-name", exporter, "-o", "json",
		"--gateway-address", "gw.east.example", "--gateway-address", "198.18.0.11:30443")
	var fromJSON ferryv1.Link
	if err := json.Unmarshal([]byte(out), &fromJSON); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if got := strings.Join(fromJSON.Spec.GatewayAddresses, ","); got != "gw.east.example:4143,198.18.0.11:30443" {
		t.Errorf("--gateway-address: %s", got)
	}
}

func assertKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	if len(m) != len(want) {
		t.Errorf("%s has keys %v, want exactly %v", what, keys(m), want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q", what, k)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

// TestLinkErrors: each mistake is one line that says what to do, and
// nothing is printed for kubectl to apply.
func TestLinkErrors(t *testing.T) {
	installEast(t)
	west := clusterClient(t, importer)
	ensureNamespace(t, west, contract.SystemNamespace)
	create(t, west, &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Name: "east", Namespace: contract.SystemNamespace},
		Spec: ferryv1.LinkSpec{ClusterName: exporter, GatewayAddresses: []string{eastGatewayIP + ":4143"},
			GatewayIdentity: contract.GatewayID(contract.DefaultMeshDomain, exporter).String()},
	})
	cases := []struct {
		name, cluster string
		args          []string
		want          string
	}{
		{"missing flag", exporter, nil, "--cluster-name is required"},
		{"bad name", exporter, []string{"--cluster-name", "East"}, `--cluster-name: cluster name "East"`},
		{"stray argument", exporter, []string{"east"}, "`ferry link` takes no arguments"},
		{"other cluster's name", exporter, []string{"--cluster-name", "south"}, `context "east" is Ferry cluster "east", not "south"`},
		{"run against the importer", importer, []string{"--cluster-name", exporter}, `context "west" already imports from "east"`},
		{"no Ferry here", importer, []string{"--cluster-name", importer}, "is Ferry installed here?"},
		{"bad address", exporter, []string{"--cluster-name", exporter, "--gateway-address", "gw.east.example:"}, `--gateway-address "gw.east.example:": want host or host:port`},
		{"bad output", exporter, []string{"--cluster-name", exporter, "-o", "table"}, `unknown output format "table": use yaml, json, name, jsonpath=TEMPLATE`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := ferryOn(t, c.cluster, append([]string{"link"}, c.args...)...)
			oneLine(t, err, c.want)
			if out != "" || stderr != "" {
				t.Errorf("printed %q / %q", out, stderr)
			}
		})
	}
}
