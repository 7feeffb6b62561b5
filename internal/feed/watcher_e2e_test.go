package feed

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/exportwatch"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// shared is one real API server for this package's tests, started on first use.
var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}, CRDs: testenv.MCSCRDs()}}

func TestMain(m *testing.M) { shared.Main(m) }

// TestUnrelatedChurnSendsNoFeedBytes is requirement II end to end: east's
// Watcher feeds east's feed server, west subscribes; churn in Services and
// EndpointSlices that nobody exports sends west nothing at all.
func TestUnrelatedChurnSendsNoFeedBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := shared.Get(t).Cluster("east")
	const ns = "feed-churn"
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: ns, Name: "web", Endpoints: []testenv.Endpoint{{IP: "198.18.0.40", Port: 80, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	w, err := exportwatch.NewWatcher(c.RestConfig, exportwatch.WatcherOptions{Logger: testkit.Logger(), Namespaces: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan error, 1)
	go func() { wdone <- w.Start(wctx) }()
	defer func() {
		wcancel()
		if err := <-wdone; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()

	f := &fixture{mesh: newFixtureMesh(t)}
	if f.metrics, err = NewMetrics(nil); err != nil {
		t.Fatal(err)
	}
	// Heartbeats off for the measurement: every byte counted is an update.
	if f.srv, err = NewServer(w, ServerOptions{LocalCluster: "east", Logger: testkit.Logger(), Metrics: f.metrics, HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.addr = f.serve(t, f.srv)
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.HeartbeatTimeout = time.Minute
	run(t, cfg, r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.state) == 1 })
	// The server counts the snapshot's bytes after Send returns.
	f.waitCounted(t, "west", kindSnapshot, 1)
	bytesAfterSnapshot := testBytes(f, "west")

	const n = 100
	for i := range n {
		b := testenv.Backend{Namespace: ns, Name: fmt.Sprintf("noise-%d", i), Endpoints: []testenv.Endpoint{{IP: "198.18.1.1", Port: 80, Ready: i%2 == 0}}}
		if _, err := c.CreateBackend(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := c.SetEndpoints(ctx, ns, b.Name, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Sentinel: one real change, written after the churn.
	if err := c.SetEndpoints(ctx, ns, "web", []testenv.Endpoint{{IP: "198.18.0.40", Port: 80, Ready: true}, {IP: "198.18.0.41", Port: 80, Ready: true}}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, "sentinel", func(r *recorder) bool { return r.state[exports.Key{Namespace: ns, Name: "web"}].ReadyEndpoints == 2 })
	r.mu.Lock()
	updates := len(r.updates)
	r.mu.Unlock()
	f.waitCounted(t, "west", kindDelta, 1)
	if updates != 2 || f.sent("west", kindDelta) != 1 {
		t.Fatalf("%d updates (%v delta messages) for %d unexported Services and one real change; want snapshot + 1 delta", updates, f.sent("west", kindDelta), n)
	}
	t.Logf("%d unexported Services created and churned: 0 feed messages; the real change: 1 delta of %.0f bytes",
		n, testBytes(f, "west")-bytesAfterSnapshot)
}

func testBytes(f *fixture, cluster string) float64 {
	return testutilToFloat(f.metrics.Bytes.WithLabelValues(cluster))
}
