package controllerd_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/api/crds"
	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/controllerd"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

var west *testenv.Cluster

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters:    []string{"west"},
		CRDs:        append(testenv.MCSCRDs(), crds.All()...),
		AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "controller tests:", err)
		os.Exit(1)
	}
	west = env.Cluster("west")
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// eastGateway serves the real feed and answers probes as east's gateway:
// one TLS listener with ALPN h2, east's gateway identity, open to every
// other cluster of the mesh.
func eastGateway(t *testing.T, mesh *identitytest.Mesh, es ...exports.Export) string {
	t.Helper()
	pub := exports.NewPublisher()
	set := map[exports.Key]exports.Export{}
	for _, e := range es {
		set[e.Key] = e
	}
	pub.Publish(set, nil)
	srv, err := feed.NewServer(pub, feed.ServerOptions{LocalCluster: "east", MeshDomain: mesh.Domain, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := mesh.Cluster(t, "east").Gateway.ServerTLSConfig(nil)
	cfg.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
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

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunEndToEnd runs the whole controller against west: the issuer
// issues its identity from the issuer Secret, the real feed client
// subscribes to a real feed server acting as east's gateway, the real
// prober checks that gateway, and the mirror appears, ready. The admin
// server answers /live, /ready and /metrics, and the leader holds the Lease.
func TestRunEndToEnd(t *testing.T) {
	ctx := context.Background()
	mesh := identitytest.NewMesh(t, "", "east", "west")
	wi := mesh.Cluster(t, "west").Issuer
	key, err := wi.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{contract.SystemNamespace, "shop"} {
		if err := west.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := west.Kube.CoreV1().Secrets(contract.SystemNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: contract.IssuerSecret},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": wi.CertPEM(), "tls.key": key, "ca.crt": mesh.Bundle.PEM()},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := west.CreateBackend(ctx, testenv.Backend{Namespace: contract.SystemNamespace, Name: "ferry-gateway", Port: 4143,
		Endpoints: []testenv.Endpoint{{IP: "198.18.0.1", Port: 4143, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	gw := eastGateway(t, mesh, exports.Export{
		Key: exports.Key{Namespace: "shop", Name: "web"}, Type: exports.ClusterSetIP,
		Ports:   []exports.Port{{Name: testenv.DefaultBackendPortName, Protocol: "TCP", Port: 80}},
		Created: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), ReadyEndpoints: 2,
	})
	// West exports shop/web too, with another port under the same name: the
	// older export (east's) wins, and west's is marked as conflicting.
	if _, err := west.CreateBackend(ctx, testenv.Backend{Namespace: "shop", Name: "web", Port: 8080,
		Endpoints: []testenv.Endpoint{{IP: "198.18.0.9", Port: 8080, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.Create(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}); err != nil {
		t.Fatal(err)
	}

	admin := freeAddr(t)
	reg := prometheus.NewRegistry()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- controllerd.Run(runCtx, controllerd.Options{
			RestConfig: west.RestConfig, ClusterName: "west", LeaderElect: true,
			MetricsAddr: admin, HealthAddr: admin, Registry: reg,
			Logger: slog.New(slog.DiscardHandler), SkipNameValidation: true,
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	testkit.Eventually(t, "/ready", func() bool { code, _ := get("http://" + admin + "/ready"); return code == http.StatusOK })
	if code, _ := get("http://" + admin + "/live"); code != http.StatusOK {
		t.Errorf("/live: %d", code)
	}
	link := &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: "east"},
		Spec: ferryv1.LinkSpec{ClusterName: "east", GatewayAddresses: []string{gw},
			GatewayIdentity: mesh.Cluster(t, "east").GatewayID().String()},
	}
	if err := west.Client.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "mirror shop/web-east, ready", func() bool {
		var s discoveryv1.EndpointSlice
		if err := west.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web-east"}, &s); err != nil {
			return false
		}
		return len(s.Endpoints) == 1 && ptr.Deref(s.Endpoints[0].Conditions.Ready, false)
	})
	testkit.Eventually(t, "Link status", func() bool {
		var l ferryv1.Link
		_ = west.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: "east"}, &l)
		ok := 0
		for _, c := range l.Status.Conditions {
			if c.Status == metav1.ConditionTrue {
				ok++
			}
		}
		return ok == 3 && l.Status.ImportedServices == 1 && l.Status.LastSyncVersion > 0
	})
	testkit.Eventually(t, "local export conflicts with east's", func() bool {
		var se mcsv1beta1.ServiceExport
		_ = west.Client.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web"}, &se)
		for _, c := range se.Status.Conditions {
			if c.Type == string(mcsv1beta1.ServiceExportConditionConflict) && c.Status == metav1.ConditionTrue &&
				strings.Contains(c.Reason, string(mcsv1beta1.ServiceExportReasonPortConflict)) && strings.Contains(c.Message, "east") {
				return true
			}
		}
		return false
	})
	var lease coordinationv1.Lease
	if err := west.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID}, &lease); err != nil {
		t.Errorf("leader Lease: %v", err)
	}
	// The importer sets its gauge after the status write seen above.
	testkit.Eventually(t, "imported services counted", func() bool {
		return importedServices(reg, "east") >= 1
	})
	_, metrics := get("http://" + admin + "/metrics")
	for _, m := range []string{`ferry_importer_imported_services{link="east"} 1`, "ferry_importer_last_sync_age_seconds", "ferry_importer_writes_total", `ferry_build_info{goversion="go`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// importedServices is the ferry_importer_imported_services gauge of link in
// reg, or 0 while there is none.
func importedServices(reg *prometheus.Registry, link string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "ferry_importer_imported_services" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "link" && l.GetValue() == link {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
