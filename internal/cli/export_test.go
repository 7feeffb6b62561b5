package cli

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testenv"
)

func TestExportUnexport(t *testing.T) {
	env := shared.Get(t)
	east := env.Cluster(exporter)
	ctx := context.Background()
	if _, err := east.CreateBackend(ctx, testenv.Backend{Namespace: "shop", Name: "cart"}); err != nil {
		t.Fatal(err)
	}
	allowed := func() (string, bool) {
		var se mcsv1beta1.ServiceExport
		mustGet(t, east.Client, "shop", "cart", &se)
		v, ok := se.Annotations[contract.AnnotationAllowedClusters]
		return v, ok
	}
	steps := []struct {
		args        []string
		wantOut     string
		wantAllowed string // "" means no annotation
	}{
		{[]string{"export", "svc/cart"}, "serviceexport shop/cart created (to every linked cluster)", ""},
		{[]string{"export", "cart"}, "serviceexport shop/cart unchanged (to every linked cluster)", ""},
		{[]string{"export", "service/cart", "--to", "west,north", "--to", "west"}, "serviceexport shop/cart configured (to north,west, was every linked cluster)", "north,west"},
		// Without --to the list stays: widening access must be explicit.
		{[]string{"export", "svc/cart"}, "serviceexport shop/cart unchanged (to north,west)", "north,west"},
		{[]string{"export", "svc/cart", "--to", "north,west"}, "unchanged (to north,west)", "north,west"},
		{[]string{"export", "svc/cart", "--all-clusters"}, "configured (to every linked cluster, was north,west)", ""},
	}
	for _, s := range steps {
		out := mustFerryOn(t, exporter, append(s.args, "-n", "shop")...)
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("ferry %s: %q, want %q", strings.Join(s.args, " "), out, s.wantOut)
		}
		if got, ok := allowed(); got != s.wantAllowed || ok != (s.wantAllowed != "") {
			t.Errorf("after ferry %s: annotation %q (present %v), want %q", strings.Join(s.args, " "), got, ok, s.wantAllowed)
		}
	}

	// Other annotations on the export survive an update.
	var se mcsv1beta1.ServiceExport
	mustGet(t, east.Client, "shop", "cart", &se)
	se.Annotations = map[string]string{"team": "payments"}
	if err := east.Client.Update(ctx, &se); err != nil {
		t.Fatal(err)
	}
	mustFerryOn(t, exporter, "export", "svc/cart", "-n", "shop", "--to", "west")
	mustGet(t, east.Client, "shop", "cart", &se)
	if se.Annotations["team"] != "payments" || se.Annotations[contract.AnnotationAllowedClusters] != "west" {
		t.Errorf("annotations after --to west: %v", se.Annotations)
	}

	out := mustFerryOn(t, exporter, "unexport", "svc/cart", "-n", "shop")
	if out != "serviceexport shop/cart deleted\n" {
		t.Errorf("unexport: %q", out)
	}
	_, stderr, err := ferryOn(t, exporter, "unexport", "svc/cart", "-n", "shop")
	oneLine(t, err, `service shop/cart is not exported in context "east": nothing to unexport`)
	if stderr != "" {
		t.Errorf("stderr %q", stderr)
	}
	if out := mustFerryOn(t, exporter, "unexport", "cart", "-n", "shop", "--ignore-not-found"); !strings.Contains(out, "was not exported") {
		t.Errorf("--ignore-not-found: %q", out)
	}
	var svc corev1.Service
	mustGet(t, east.Client, "shop", "cart", &svc) // the Service itself stays
}

func TestExportErrors(t *testing.T) {
	env := shared.Get(t)
	east := env.Cluster(exporter)
	if err := east.EnsureNamespace(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	create(t, east.Client, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-west",
			Labels: map[string]string{contract.LabelLink: "west", contract.LabelSourceCluster: "west"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	create(t, east.Client, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-clusterset",
			Labels: map[string]string{contract.LabelClusterset: "cart"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	})
	create(t, east.Client,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ext"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.internal"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dns"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}, {Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 9}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "noports"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
	)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"ExternalName", []string{"export", "svc/ext", "-n", "shop"}, `service shop/ext is of type ExternalName (an alias of "db.example.internal"), with no endpoints of its own for a gateway to carry traffic to: export a Service with a selector or EndpointSlices instead`},
		{"no TCP port", []string{"export", "svc/dns", "-n", "shop", "--to", "west"}, "service shop/dns has no TCP port (only UDP 53, SCTP 9), and Ferry's gateways carry TCP only: add a TCP port to the Service to export it"},
		{"no ports", []string{"export", "svc/noports", "-n", "shop"}, "service shop/noports has no ports, and Ferry's gateways carry TCP ports only: add a TCP port to the Service (`kubectl -n shop edit svc noports`), then export it"},
		{"no Service", []string{"export", "svc/nope", "-n", "shop"}, `no Service "nope" in namespace "shop" of context "east": create the Service first, or pass -n NAMESPACE`},
		{"wrong namespace", []string{"export", "svc/cart"}, `no Service "cart" in namespace "default"`},
		{"not a Service", []string{"export", "deploy/cart", "-n", "shop"}, `"deploy/cart": only Services can be exported; use svc/NAME or NAME`},
		{"bad name", []string{"export", "svc/Cart_1"}, `"Cart_1" is not a Service name`},
		{"no argument", []string{"export"}, "name one Service: `ferry export svc/NAME [-n NAMESPACE]`"},
		{"two arguments", []string{"unexport", "a", "b"}, "name one Service: `ferry unexport svc/NAME"},
		{"bad cluster", []string{"export", "svc/cart", "-n", "shop", "--to", "west,North"}, `--to: cluster name "North"`},
		{"empty --to", []string{"export", "svc/cart", "-n", "shop", "--to", ""}, "--to needs at least one cluster name; to let every linked cluster import, use --all-clusters"},
		{"--to and --all-clusters", []string{"export", "svc/cart", "-n", "shop", "--to", "west", "--all-clusters"}, "none of the others can be"},
		{"a mirror", []string{"export", "svc/cart-west", "-n", "shop"}, `service shop/cart-west is a mirror that Ferry imports from cluster "west": export the original Service in west instead`},
		{"a clusterset Service", []string{"export", "svc/cart-clusterset", "-n", "shop"}, `service shop/cart-clusterset is Ferry's clusterset Service of shop/cart: export shop/cart itself in each cluster that serves it`},
		{"unknown context", []string{"export", "svc/cart", "--context", "nope"}, `context "nope" is not in`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, err := ferryOn(t, exporter, c.args...)
			oneLine(t, err, c.want)
			if out != "" || stderr != "" {
				t.Errorf("printed %q / %q", out, stderr)
			}
		})
	}
	// Refused means nothing written.
	var list mcsv1beta1.ServiceExportList
	if err := east.Client.List(context.Background(), &list, client.InNamespace("shop")); err != nil {
		t.Fatal(err)
	}
	for _, se := range list.Items {
		if se.Name != "cart" { // TestExportUnexport's, if it ran first
			t.Errorf("a refused export left ServiceExport %s/%s", se.Namespace, se.Name)
		}
	}
}
