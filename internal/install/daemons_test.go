package install

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/controllerd"
	"ferry.dev/ferry/internal/gatewayd"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestDaemonsRunWithInstalledRBAC runs the real controller and gateway in
// this process, each authenticated as its installed ServiceAccount
// (impersonation), against a cluster holding exactly the rendered objects.
// Whatever they need and the install does not grant shows up here: the
// controller must become ready, issue ferry-gateway-tls, hold the Lease,
// put its finalizer and status on a Link and conditions on an export; the
// gateway must become ready (caches synced, certificate loaded).
func TestDaemonsRunWithInstalledRBAC(t *testing.T) {
	c := installed(t)
	ctx := t.Context()
	// testenv has no endpointslice controller: give the gateway Service the
	// slice that kube-controller-manager would write.
	if err := c.SetEndpoints(ctx, contract.SystemNamespace, contract.GatewayName, []testenv.Endpoint{{IP: "198.18.0.1", Port: contract.IngressPort, Ready: true}}); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctlAdmin := freeAddr(t)
	runDaemon(t, "controller", func(ctx context.Context) error {
		return controllerd.Run(ctx, controllerd.Options{
			RestConfig: as(c.RestConfig, contract.ControllerName), ClusterName: "east", MeshDomain: "ferry.local",
			LeaderElect: true, MetricsAddr: ctlAdmin, HealthAddr: ctlAdmin, Registry: prometheus.NewRegistry(),
			Logger: logger, SkipNameValidation: true,
		})
	})
	testkit.Eventually(t, "controller /ready", func() bool { return httpOK("http://" + ctlAdmin + "/ready") })
	testkit.Eventually(t, "ferry-gateway-tls issued by the controller", func() bool {
		var s corev1.Secret
		return c.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayTLSSecret}, &s) == nil && len(s.Data["tls.crt"]) > 0
	})
	testkit.Eventually(t, "leader Lease", func() bool {
		var l coordinationv1.Lease
		return c.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID}, &l) == nil
	})

	gwAdmin := freeAddr(t)
	runDaemon(t, "gateway", func(ctx context.Context) error {
		return gatewayd.Run(ctx, gatewayd.Options{
			RestConfig: as(c.RestConfig, contract.GatewayName), ClusterName: "east", MeshDomain: "ferry.local",
			ListenAddr: freeAddr(t), AdminAddr: gwAdmin, EgressHost: "127.0.0.1", Logger: logger,
		})
	})
	testkit.Eventually(t, "gateway /ready", func() bool { return httpOK("http://" + gwAdmin + "/ready") })

	// A Link to an unreachable cluster: the controller still adds its
	// finalizer (links update) and reports status (links/status).
	link := &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Name: "west", Namespace: contract.SystemNamespace},
		Spec: ferryv1.LinkSpec{ClusterName: "west", GatewayAddresses: []string{"127.0.0.1:1"},
			GatewayIdentity: "spiffe://west.ferry.local/ns/ferry-system/sa/ferry-gateway"},
	}
	if err := c.Client.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "Link finalizer and status", func() bool {
		var l ferryv1.Link
		return c.Client.Get(ctx, client.ObjectKeyFromObject(link), &l) == nil && len(l.Finalizers) > 0 && len(l.Status.Conditions) > 0
	})
	if err := c.Client.Delete(ctx, link); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "Link deleted through its finalizer", func() bool {
		var l ferryv1.Link
		return c.Client.Get(ctx, client.ObjectKeyFromObject(link), &l) != nil
	})

	// A local export: the controller writes its conditions.
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: "shop", Name: "web",
		Endpoints: []testenv.Endpoint{{IP: "198.18.0.9", Port: 8080, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	export := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	if err := c.Client.Create(ctx, export); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "export conditions", func() bool {
		var se mcsv1beta1.ServiceExport
		return c.Client.Get(ctx, client.ObjectKeyFromObject(export), &se) == nil && len(se.Status.Conditions) > 0
	})
	if s := logs.String(); strings.Contains(strings.ToLower(s), "forbidden") {
		t.Errorf("a daemon was refused something:\n%s", s)
	}
}

// as impersonates a ServiceAccount of ferry-system with the groups the API
// server gives every ServiceAccount.
func as(cfg *rest.Config, sa string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + contract.SystemNamespace + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + contract.SystemNamespace, "system:authenticated"},
	}
	return cfg
}

func runDaemon(t *testing.T, name string, run func(context.Context) error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(time.Minute):
			t.Errorf("%s did not stop", name)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
