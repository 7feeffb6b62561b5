package issuer

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// One cluster for the package, started on first use so that the pure tests
// run without it.
var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}}}

func TestMain(m *testing.M) { shared.Main(m) }

// counting is a client that counts its writes to Secrets.
type counting struct {
	kubernetes.Interface
	writes atomic.Int64
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func countingClient(t *testing.T, cfg *rest.Config) *counting {
	t.Helper()
	c := &counting{}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/secrets") {
				c.writes.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Interface = kube
	return c
}

// issuerData is the issuer Secret's data for cluster c of its mesh.
func issuerData(t *testing.T, c *identitytest.Cluster) map[string][]byte {
	t.Helper()
	key, err := c.Issuer.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		certsecret.CertKey:   c.Issuer.CertPEM(),
		certsecret.KeyKey:    key,
		certsecret.BundleKey: c.Mesh.Bundle.PEM(),
	}
}

func getSecret(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name string) *corev1.Secret {
	t.Helper()
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return s
}

// running is an Issuer started by a test.
type running struct {
	*Issuer
	logs *testenv.SyncBuffer
	stop func()
}

// start runs an Issuer for opts until stop or the end of the test, and
// checks afterwards that no key reached its log.
func start(t *testing.T, kube kubernetes.Interface, opts Options) *running {
	t.Helper()
	if opts.Cluster == "" {
		opts.Cluster = "east"
	}
	opts.Registry = prometheus.NewRegistry()
	logs := &testenv.SyncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 50 * time.Millisecond
	}
	i, err := New(kube, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("issuer: %v", err)
			}
			if strings.Contains(logs.String(), "PRIVATE KEY") {
				t.Errorf("key material in the log")
			}
		})
	}
	t.Cleanup(stop)
	return &running{Issuer: i, logs: logs, stop: stop}
}

// findEvent returns an Event in ns about object name with reason.
func findEvent(ctx context.Context, kube kubernetes.Interface, ns, name, reason string) *eventsv1.Event {
	list, err := kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	for i := range list.Items {
		e := &list.Items[i]
		if e.Regarding.Name == name && e.Reason == reason {
			return e
		}
	}
	return nil
}

func waitEvent(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name, reason string) *eventsv1.Event {
	t.Helper()
	var e *eventsv1.Event
	testkit.Eventually(t, "event "+reason+" on "+name, func() bool {
		e = findEvent(ctx, kube, ns, name, reason)
		return e != nil
	})
	if strings.Contains(e.Note, "PRIVATE KEY") {
		t.Fatalf("key material in event %s", reason)
	}
	return e
}
