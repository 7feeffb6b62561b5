package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// Limits of the profile server.
const (
	// ReadHeaderTimeout bounds a client that opens a connection and sends
	// nothing.
	ReadHeaderTimeout = 5 * time.Second
	// MaxProfileSeconds bounds /debug/pprof/profile and /trace: a request
	// for longer is refused rather than holding a handler that long.
	MaxProfileSeconds = 120
)

// Handler serves the pprof index and every profile under /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", bounded(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", bounded(pprof.Trace))
	return mux
}

// bounded refuses a seconds parameter beyond MaxProfileSeconds.
func bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("seconds"); s != "" {
			if n, err := strconv.Atoi(s); err != nil || n < 1 || n > MaxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds=%q: want 1..%d", s, MaxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		h(w, r)
	}
}

// Server serves Handler on one address.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// Listen binds addr at once, so that a port in use fails the daemon's
// start rather than a later request.
func Listen(addr string, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof server: %w", err)
	}
	return &Server{ln: ln, log: log, srv: &http.Server{Handler: Handler(), ReadHeaderTimeout: ReadHeaderTimeout}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends; a request in flight (a CPU profile) is cut
// short then.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Warn("serving runtime profiles; keep this address private", "addr", s.Addr())
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case <-ctx.Done():
		_ = s.srv.Close()
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("pprof server: %w", err)
	}
}

// NeedLeaderElection is false: every replica can be profiled.
func (s *Server) NeedLeaderElection() bool { return false }

// Start is Serve, for a controller-runtime manager.
func (s *Server) Start(ctx context.Context) error { return s.Serve(ctx) }
