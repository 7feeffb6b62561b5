package importer_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"ferry.dev/ferry/api/crds"
	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/importer"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// west is the importing cluster, shared by every test in the package. Tests
// run one at a time: each starts its own importer, and an importer owns
// every Link in ferry-system.
var west *testenv.Cluster

// gatewayIPs are the local gateway pods' addresses (non-loopback: the API
// server refuses loopback endpoints).
var gatewayIPs = []string{"198.18.0.1", "198.18.0.2"}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters:    []string{"west"},
		CRDs:        append(testenv.MCSCRDs(), crds.All()...),
		AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
	})
	if err == nil {
		west = env.Cluster("west")
		err = west.EnsureNamespace(ctx, contract.SystemNamespace)
	}
	if err == nil {
		var eps []testenv.Endpoint
		for _, ip := range gatewayIPs {
			eps = append(eps, testenv.Endpoint{IP: ip, Port: 4143, Ready: true})
		}
		_, err = west.CreateBackend(ctx, testenv.Backend{Namespace: contract.SystemNamespace, Name: contract.GatewayName, Port: 4143, Endpoints: eps})
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "importer tests:", err)
		if env != nil {
			env.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

// harness runs one importer against west with fake feeds and a fake prober.
type harness struct {
	t        testing.TB
	feeds    map[string]*fakeFeed // by first gateway address
	prober   *fakeProber
	writes   *testenv.WriteCounts
	registry *prometheus.Registry
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
}

type harnessOption func(*importer.Options)

// startImporter starts an importer; feeds are looked up by the Link's first
// gateway address.
func startImporter(t testing.TB, feeds map[string]*fakeFeed, prober *fakeProber, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, feeds: feeds, prober: prober, registry: prometheus.NewRegistry(), done: make(chan struct{})}
	mo := manager.Options{
		Scheme:                 west.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logr.Discard(),
	}
	gw := types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}
	importer.ConfigureManager(&mo, gw, contract.SystemNamespace)
	cfg := rest.CopyConfig(west.RestConfig)
	cfg.QPS, cfg.Burst = importer.DefaultQPS, importer.DefaultBurst
	mgr, err := manager.New(cfg, mo)
	if err != nil {
		t.Fatal(err)
	}
	counted, writes := testenv.CountWrites(mgr.GetClient())
	h.writes = writes
	io := importer.Options{
		Gateway:  gw,
		Client:   counted,
		Registry: h.registry,
		Prober:   prober,
		Feed: func(c feed.ClientConfig) (importer.Feed, error) {
			f := feeds[c.Addresses[0]]
			if f == nil {
				return nil, fmt.Errorf("no fake feed at %s", c.Addresses[0])
			}
			return f, nil
		},
		SkipNameValidation: true,
		Logger:             testkit.Logger(),
	}
	for _, o := range opts {
		o(&io)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if _, err := importer.Setup(ctx, mgr, io); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(h.done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// linkSpec is a Link to cluster "east" whose feed is the fake at addr.
func newLink(name, addr string) *ferryv1.Link {
	return &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: name},
		Spec: ferryv1.LinkSpec{
			ClusterName:      "east",
			GatewayAddresses: []string{addr},
			GatewayIdentity:  "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
			Probe: ferryv1.ProbeSpec{
				Period:           &metav1.Duration{Duration: 100 * time.Millisecond},
				FailureThreshold: ptr.To[int32](3),
			},
		},
	}
}

func createLink(t testing.TB, l *ferryv1.Link) {
	t.Helper()
	if err := west.Client.Create(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
}

// deleteLink deletes a Link and waits until it is gone (finalizer run).
func deleteLink(t testing.TB, name string) { deleteLinkWithin(t, name, 30*time.Second) }

func deleteLinkWithin(t testing.TB, name string, within time.Duration) {
	t.Helper()
	l := &ferryv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: name}}
	if err := west.Client.Delete(ctxT(t), l); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, within, "link "+name+" gone", func() bool {
		err := west.Client.Get(ctxT(t), client.ObjectKeyFromObject(l), l)
		return apierrors.IsNotFound(err)
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func export(ns, name string, port int32) exports.Export {
	return exports.Export{
		Key:            exports.Key{Namespace: ns, Name: name},
		Type:           exports.ClusterSetIP,
		Ports:          []exports.Port{{Name: "http", Protocol: "TCP", Port: port}},
		ReadyEndpoints: 1,
	}
}

func getService(t testing.TB, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	err := west.Client.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

func getSlice(t testing.TB, ns, name string) *discoveryv1.EndpointSlice {
	t.Helper()
	var s discoveryv1.EndpointSlice
	err := west.Client.Get(ctxT(t), types.NamespacedName{Namespace: ns, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

func getLink(t testing.TB, name string) *ferryv1.Link {
	t.Helper()
	var l ferryv1.Link
	if err := west.Client.Get(ctxT(t), types.NamespacedName{Namespace: contract.SystemNamespace, Name: name}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

func condition(l *ferryv1.Link, typ string) metav1.Condition {
	for _, c := range l.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// allReady reports whether a slice has endpoints and all are ready==want.
func allReady(s *discoveryv1.EndpointSlice, want bool) bool {
	if s == nil || len(s.Endpoints) == 0 {
		return false
	}
	for _, ep := range s.Endpoints {
		if ptr.Deref(ep.Conditions.Ready, true) != want {
			return false
		}
	}
	return true
}

// ownedCount counts the Services and EndpointSlices labelled with a Link.
func ownedCount(t testing.TB, link string) int {
	t.Helper()
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	sel := client.MatchingLabels{contract.LabelLink: link}
	if err := west.Client.List(ctxT(t), &svcs, sel); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.List(ctxT(t), &slices, sel); err != nil {
		t.Fatal(err)
	}
	return len(svcs.Items) + len(slices.Items)
}
