package controllerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Admin server limits: it serves probes and scrapes, small and local.
const (
	adminReadHeaderTimeout = 5 * time.Second
	adminShutdownTimeout   = 5 * time.Second
)

// admin serves /live, /ready and /metrics (contracts.md: the controller's
// admin port). With --metrics-addr and --health-addr equal, one listener
// serves all three; otherwise each serves its own paths.
type admin struct {
	servers []*http.Server
	lns     []net.Listener
	log     *slog.Logger
}

// newAdmin listens at once, so a port in use fails Run before anything
// starts.
func newAdmin(metricsAddr, healthAddr string, g prometheus.Gatherer, ready func() error, log *slog.Logger) (*admin, error) {
	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if on(healthAddr) {
		m := mux(healthAddr)
		m.HandleFunc("/live", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		m.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
	}
	if on(metricsAddr) {
		mux(metricsAddr).Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	a := &admin{log: log}
	for addr, m := range muxes {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("admin server: %w", err)
		}
		a.lns = append(a.lns, ln)
		a.servers = append(a.servers, &http.Server{Handler: m, ReadHeaderTimeout: adminReadHeaderTimeout})
	}
	return a, nil
}

func on(addr string) bool { return addr != "" && addr != "0" }

// Addrs returns the bound addresses (useful with port 0).
func (a *admin) Addrs() []string {
	var out []string
	for _, ln := range a.lns {
		out = append(out, ln.Addr().String())
	}
	return out
}

func (a *admin) close() {
	for _, ln := range a.lns {
		_ = ln.Close()
	}
}

// Start serves until ctx ends. Every replica serves, leader or not.
func (a *admin) Start(ctx context.Context) error {
	errc := make(chan error, len(a.servers))
	for i, s := range a.servers {
		a.log.Info("admin server listening", "addr", a.lns[i].Addr().String())
		go func() { errc <- s.Serve(a.lns[i]) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin server: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	for _, s := range a.servers {
		_ = s.Shutdown(sctx)
	}
	return nil
}

func (a *admin) NeedLeaderElection() bool { return false }
