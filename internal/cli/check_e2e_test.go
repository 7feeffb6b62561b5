package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/controllerd"
	"ferry.dev/ferry/internal/gatewayd"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// TestCLIEndToEnd is the walk-through with the real controller and
// gateway of both clusters running in this process: install -> link ->
// export -> links shows the import -> check passes -> gateways shows the
// remote alive -> unlink --wait -> nothing left.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters and four daemons")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters: []string{"east", "west"}, CRDs: install.CRDDocuments(),
		AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	}()
	daemons, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	ingress := map[string]string{}
	for i, name := range []string{"east", "west"} {
		c := env.Cluster(name)
		applyInstall(t, c, root)
		// The gateway "pod", as kube-controller-manager would list it.
		if err := c.SetEndpoints(ctx, contract.SystemNamespace, contract.GatewayName,
			[]testenv.Endpoint{{IP: "198.18.9." + string(rune('1'+i)), Port: contract.IngressPort, Ready: true}}); err != nil {
			t.Fatal(err)
		}
		ingress[name] = freeAddr(t)
		logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("cluster", name)
		admin, gwAdmin := freeAddr(t), freeAddr(t)
		run := func(what string, f func(context.Context) error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(daemons); err != nil && daemons.Err() == nil {
					t.Errorf("%s %s: %v", name, what, err)
				}
			}()
		}
		run("controller", func(ctx context.Context) error {
			return controllerd.Run(ctx, controllerd.Options{RestConfig: c.RestConfig, ClusterName: name, MeshDomain: contract.DefaultMeshDomain,
				LeaderElect: true, MetricsAddr: admin, HealthAddr: admin, Registry: prometheus.NewRegistry(), Logger: logger, SkipNameValidation: true})
		})
		run("gateway", func(ctx context.Context) error {
			return gatewayd.Run(ctx, gatewayd.Options{RestConfig: c.RestConfig, ClusterName: name, MeshDomain: contract.DefaultMeshDomain,
				ListenAddr: ingress[name], AdminAddr: gwAdmin, EgressHost: "127.0.0.1", Logger: logger})
		})
	}
	ferry := func(cluster string, args ...string) (string, error) {
		out, stderr, err := execFerry(t, append([]string{"--kubeconfig", env.Kubeconfig, "--context", cluster}, args...)...)
		return out + stderr, err
	}
	must := func(cluster string, args ...string) string {
		t.Helper()
		out, err := ferry(cluster, args...)
		if err != nil {
			t.Fatalf("ferry --context %s %s: %v\n%s", cluster, strings.Join(args, " "), err, out)
		}
		return out
	}

	east, west := env.Cluster("east"), env.Cluster("west")
	if _, err := east.CreateBackend(ctx, testenv.Backend{Namespace: "shop", Name: "cart",
		Endpoints: []testenv.Endpoint{{IP: "198.18.9.50", Port: 8080, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := west.EnsureNamespace(ctx, "shop"); err != nil { // namespace sameness
		t.Fatal(err)
	}
	must("east", "export", "svc/cart", "-n", "shop", "--to", "west")

	// The gateway's Service has no load balancer here; its address is given.
	manifest := must("east", "link", "--cluster-name", "east", "--gateway-address", ingress["east"])
	var link ferryv1.Link
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(manifest, "---\n")), &link); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.Create(ctx, &link); err != nil {
		t.Fatalf("apply the Link in west: %v", err)
	}

	var rows []linkSummary
	waitUntil(t, 90*time.Second, "links shows east's export imported", func() bool {
		out, err := ferry("west", "links", "-o", "json")
		return err == nil && json.Unmarshal([]byte(out), &rows) == nil && len(rows) == 1 &&
			rows[0].ImportedServices == 1 && rows[0].Connected == "True" && rows[0].GatewayHealthy == "True" && rows[0].Synced == "True"
	})
	if out := must("west", "links"); !strings.Contains(out, "east   east      "+ingress["east"]) {
		t.Errorf("links:\n%s", out)
	}
	if out, err := ferry("west", "check", "--wait", "60s"); err != nil || !strings.Contains(out, "Status: all checks passed") {
		t.Errorf("check in west: %v\n%s", err, out)
	}
	if out, err := ferry("east", "check", "--wait", "30s"); err != nil {
		t.Errorf("check in east: %v\n%s", err, out)
	}
	if out := must("west", "gateways"); !strings.Contains(out, "east   east      "+ingress["east"]+"   True") {
		t.Errorf("gateways:\n%s", out)
	}

	out := must("west", "unlink", "--cluster-name", "east", "--wait", "--timeout", "60s")
	if !strings.Contains(out, "link east removed, and everything it owned") {
		t.Errorf("unlink --wait:\n%s", out)
	}
	k := &kubeTarget{Client: west.Client, Context: "west"}
	if left, err := ownedObjects(ctx, k, ""); err != nil || len(left) > 0 {
		t.Errorf("after unlink: %v, left %+v", err, left)
	}
	if out, err := ferry("west", "check"); err != nil {
		t.Errorf("check after unlink: %v\n%s", err, out)
	}
}

// applyInstall creates what `ferry install` renders for c (the CRDs are
// there already), with an issuer from root.
func applyInstall(t *testing.T, c *testenv.Cluster, root *identity.CA) {
	t.Helper()
	issuer, err := root.NewIssuer(c.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := issuer.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := install.Render(install.Options{ClusterName: c.Name, GatewayServiceType: corev1.ServiceTypeClusterIP,
		IssuerCertPEM: issuer.CertPEM(), IssuerKeyPEM: key, TrustBundlePEM: root.CertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind == "CustomResourceDefinition" {
			continue
		}
		if err := c.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("install %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
