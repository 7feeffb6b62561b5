package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition.
type Check struct {
	Name string
	Fn   func() error
}

// CertificateLoaded is the readiness check "the gateway has its
// certificate"; *identity.Source satisfies src.
func CertificateLoaded(src interface{ Certificate() *tls.Certificate }) Check {
	return Check{Name: "certificate", Fn: func() error {
		if src.Certificate() == nil {
			return errors.New("no certificate loaded")
		}
		return nil
	}}
}

// Ops serves /live, /ready and /metrics.
//
// /live answers 200 while the process can serve HTTP at all: restarting a
// gateway because a dependency is down would only add an outage. /ready is
// 200 when every check passes and the gateway is not draining, so
// Kubernetes stops sending it traffic as soon as drain begins.
type Ops struct {
	// Gatherer is the caller's registry (not the global one).
	Gatherer prometheus.Gatherer
	// Checks must all pass for /ready; typically CertificateLoaded and a
	// "caches synced" check from the wiring.
	Checks []Check

	draining atomic.Bool
}

// SetDraining makes /ready fail from now on.
func (o *Ops) SetDraining() { o.draining.Store(true) }

// Ready returns nil when ready, or why not.
func (o *Ops) Ready() error {
	if o.draining.Load() {
		return errors.New("draining")
	}
	var errs []error
	for _, c := range o.Checks {
		if err := c.Fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Handler returns the HTTP handler for the ops port.
func (o *Ops) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if err := o.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	g := o.Gatherer
	if g == nil {
		g = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// Drainer is a part of the gateway that can drain: *Ingress and *Egress.
type Drainer interface {
	Shutdown(ctx context.Context) error
}

// Drain is the SIGTERM path: /ready turns false, then every part drains in
// parallel, bounded by timeout (Limits.DrainTimeout) and by ctx. It
// returns the parts' errors, which say whether streams had to be cut.
func Drain(ctx context.Context, ops *Ops, timeout time.Duration, parts ...Drainer) error {
	if ops != nil {
		ops.SetDraining()
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Shutdown(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
