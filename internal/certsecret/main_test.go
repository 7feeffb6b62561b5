package certsecret

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/testenv"
)

// One cluster for the package, started on first use so that the pure tests
// run without it.
var (
	envOnce sync.Once
	envErr  error
	env     *testenv.Env
	nsSeq   atomic.Int32
)

func TestMain(m *testing.M) {
	m.Run()
	if env != nil {
		env.Stop()
	}
}

func cluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		env, envErr = testenv.Start(ctx, testenv.Options{Clusters: []string{"east"}})
	})
	if envErr != nil {
		t.Fatalf("testenv: %v", envErr)
	}
	return env.Cluster("east")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace makes a namespace of the test's own.
func newNamespace(t *testing.T, ctx context.Context, kube kubernetes.Interface) string {
	t.Helper()
	name := fmt.Sprintf("certsecret-%d", nsSeq.Add(1))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func quietLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a log sink that tests read while the loader writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leafData encodes a leaf chain and bundle as a TLS Secret's data.
func leafData(t *testing.T, leaf *tls.Certificate, bundle *identity.Bundle) map[string][]byte {
	t.Helper()
	cert, key, err := identity.EncodeLeafPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{CertKey: cert, KeyKey: key, BundleKey: bundle.PEM()}
}

// startLoader runs a loader for ns/name until the test ends.
func startLoader(t *testing.T, kube kubernetes.Interface, opts Options) (*Loader, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registry = reg
	if opts.Logger == nil {
		opts.Logger = quietLogger(nil)
	}
	l, err := NewLoader(kube, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loader: %v", err)
		}
	})
	return l, reg
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
