package gatewayd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/endpoints"
	"ferry.dev/ferry/internal/exportwatch"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/profiling"
	"ferry.dev/ferry/internal/tunnel"
	"ferry.dev/ferry/internal/version"
)

// feedBacklog bounds feed connections accepted by TLS but not yet by gRPC.
const feedBacklog = 64

// RetiringSessionsMetric counts the tunnel sessions that still carry
// streams after they were retired; `ferry check` reads it during a trust
// rotation.
const RetiringSessionsMetric = "ferry_gateway_tunnel_sessions_retiring"

// feedStopTimeout bounds the feed's graceful stop on SIGTERM.
const feedStopTimeout = 5 * time.Second

// ErrInvalidOptions wraps the problems Run finds in its Options, so that a
// main can tell a configuration error (exit 2) from a failure.
var ErrInvalidOptions = errors.New("invalid configuration")

// Run completes o with its defaults, validates it, and serves the gateway
// until ctx ends, then drains. It returns only after every listener is
// closed. The mains and the tests call it the same way.
func Run(ctx context.Context, o Options) error {
	o.Default()
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w:\n%w", ErrInvalidOptions, err)
	}
	log := o.Logger.With("cluster", o.ClusterName)
	// client-go's reflectors log through controller-runtime's global
	// logger: unset, it drops those lines and prints a stack trace
	// complaining of it into the daemon's log.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	// The components run in runCtx, which keeps ctx's values but not its
	// end: when ctx ends the gateway drains first (below), then stops them.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	cfg := *o.RestConfig
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = DefaultClientQPS, DefaultClientBurst
	}
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return fmt.Errorf("gatewayd: kubernetes client: %w", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ferryv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("gatewayd: scheme: %w", err)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := gateway.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("gatewayd: metrics: %w", err)
	}
	self := contract.GatewayID(o.MeshDomain, o.ClusterName)

	certs, err := certsecret.NewLoader(kube, certsecret.Options{
		Namespace: o.Namespace, Name: o.CertSecret, MeshDomain: o.MeshDomain,
		Expect: self, Registry: reg, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("gatewayd: certificate loader: %w", err)
	}
	src := certs.Source()
	if err := reg.Register(certsecret.TrustCollector("gateway", src)); err != nil {
		return fmt.Errorf("gatewayd: metrics: %w", err)
	}
	if err := reg.Register(version.Collector()); err != nil {
		return fmt.Errorf("gatewayd: metrics: %w", err)
	}

	watcher, err := exportwatch.NewWatcher(&cfg, exportwatch.WatcherOptions{Logger: log})
	if err != nil {
		return fmt.Errorf("gatewayd: export watcher: %w", err)
	}
	// Ingress authorizes against the watcher's export set and picks
	// endpoints from its cache: one watch of Services and EndpointSlices.
	index := endpoints.NewIndex(watcher.Reader(), exportwatch.IndexServiceName)

	ln, err := net.Listen("tcp", o.ListenAddr)
	if err != nil {
		return fmt.Errorf("gatewayd: ingress listener: %w", err)
	}
	feedSink := tunnel.NewConnListener(ln.Addr(), feedBacklog)
	ingress, err := gateway.NewIngress(gateway.IngressOptions{
		Local: self, TLS: src, Authorizer: gateway.NewExportAuthorizer(watcher), Endpoints: picker{index},
		FeedSink: feedSink, Limits: o.Limits, Metrics: metrics, Logger: log,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("gatewayd: ingress: %w", err)
	}
	feedMetrics, err := feed.NewMetrics(reg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("gatewayd: feed metrics: %w", err)
	}
	feedSrv, err := feed.NewServer(watcher, feed.ServerOptions{
		LocalCluster: o.ClusterName, MeshDomain: o.MeshDomain, Logger: log, Metrics: feedMetrics,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("gatewayd: feed: %w", err)
	}
	callers, err := newCallers(kube, o.EgressHostCallers, log)
	if err != nil {
		ln.Close()
		return err
	}
	egress, err := gateway.NewEgress(runCtx, gateway.EgressOptions{
		TLS: src, ListenHost: o.EgressHost, Callers: callers, CallerMode: o.EgressCallers,
		LocalEndpoints: picker{index},
		Limits:         o.Limits, Metrics: metrics, Logger: log,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("gatewayd: egress: %w", err)
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: RetiringSessionsMetric,
		Help: "Tunnel sessions, inbound and outbound, that were retired (at their age, or because this gateway's certificate was renewed) and still carry streams on the certificates of their handshake.",
	}, func() float64 { return float64(ingress.RetiringSessions() + egress.RetiringSessions()) })); err != nil {
		ln.Close()
		return fmt.Errorf("gatewayd: metrics: %w", err)
	}
	routes, err := newRouteSync(&cfg, scheme, o, egress, watcher)
	if err != nil {
		ln.Close()
		return err
	}
	var prof *profiling.Server
	if o.PprofAddr != "" {
		if prof, err = profiling.Listen(o.PprofAddr, log); err != nil {
			ln.Close()
			return err
		}
	}

	watcherSynced := func() error {
		if !watcher.Current().Synced {
			return errors.New("export caches not synced")
		}
		return nil
	}
	ops := &gateway.Ops{Gatherer: reg, Checks: []gateway.Check{
		{Name: "certificate", Fn: certs.Ready},
		{Name: "exports", Fn: watcherSynced},
		{Name: "routes", Fn: routes.Synced},
		{Name: "callers", Fn: callers.Synced},
	}}
	admin := &http.Server{Addr: o.AdminAddr, Handler: ops.Handler(), ReadHeaderTimeout: 5 * time.Second}

	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return certs.Start(gctx) })
	g.Go(func() error { return watcher.Start(gctx) })
	g.Go(func() error { return routes.Run(gctx) })
	g.Go(func() error { return callers.Run(gctx) })
	g.Go(func() error { return ignoreClosed(feedSrv.Serve(feedSink)) })
	g.Go(func() error { return ignoreClosed(ingress.Serve(runCtx, ln)) })
	g.Go(func() error { return ignoreClosed(admin.ListenAndServe()) })
	if prof != nil {
		g.Go(func() error { return prof.Serve(runCtx) })
	}
	log.Info("gateway started", "identity", self.String(), "ingress", ln.Addr().String(), "admin", o.AdminAddr)

	select {
	case <-ctx.Done():
		log.Info("draining", "timeout", o.Limits.DrainTimeout)
	case <-gctx.Done():
	}
	drainCtx, cancel := context.WithTimeout(runCtx, o.Limits.DrainTimeout+5*time.Second)
	defer cancel()
	drainErr := gateway.Drain(drainCtx, ops, o.Limits.DrainTimeout, ingress, egress)
	feedSrv.GracefulStopTimeout(feedStopTimeout)
	_ = admin.Shutdown(drainCtx)
	stop()
	err = g.Wait()
	if ctx.Err() == nil && err != nil {
		return fmt.Errorf("gatewayd: %w", err)
	}
	if drainErr != nil {
		log.Warn("drain ended with streams cut", "err", drainErr)
	}
	log.Info("gateway stopped")
	return nil
}

// picker adapts the endpoint index to the core's picker: a lookup error (no
// such Service, no such port, a hostname two pods claim) simply means no
// endpoint, which ingress answers as unavailable.
type picker struct{ x *endpoints.Index }

func (p picker) Endpoints(namespace, service string, port int) []string {
	addrs, err := p.x.Endpoints(namespace, service, port)
	if err != nil {
		return nil
	}
	return addrs
}

func (p picker) HostEndpoints(namespace, service, hostname string, port int) []string {
	addrs, err := p.x.HostEndpoints(namespace, service, hostname, port)
	if err != nil {
		return nil
	}
	return addrs
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
