package certsecret

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// One cluster for the package, started on first use so that the pure tests
// run without it.
var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}}}

func TestMain(m *testing.M) { shared.Main(m) }

func quietLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// leafData encodes a leaf chain and bundle as a TLS Secret's data.
func leafData(t testing.TB, leaf *tls.Certificate, bundle *identity.Bundle) map[string][]byte {
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
