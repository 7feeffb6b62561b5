package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// Egress failure reasons (label values of egress_streams_failed_total); a
// remote's rejection is reported by its tunnel.Status name.
const (
	ReasonUnknownRemote = "unknown_remote"
	ReasonUnreachable   = "unreachable"
	ReasonPoolExhausted = "pool_exhausted"
	ReasonConnLimit     = "connection_limit"
	// ReasonClientConnLimit: one client address holds
	// MaxEgressConnsPerClient connections already.
	ReasonClientConnLimit = "client_connection_limit"
	ReasonNoRoute         = "no_route"
	// ReasonAttemptTimeout: a destination did not answer within
	// AttemptTimeout while another was left to try.
	ReasonAttemptTimeout = "attempt_timeout"
)

// Destination is one place a route can send a connection.
type Destination struct {
	// Cluster names the remote, as a key of SetRemotes.
	Cluster string
	// Target is the export in that cluster. With a Hostname it is one pod
	// of a headless export; the header carries it as it is, and ingress
	// serves that pod or nothing.
	Target tunnel.Target
	// Local marks this cluster's own export: its share goes straight to a
	// ready local endpoint of Target (as ingress would pick one), with no
	// tunnel and no TLS. Cluster still names it, for metrics.
	Local bool
	// Weight is the destination's share of the route's new connections,
	// relative to the others'. Zero takes none (no ready endpoint there,
	// or a policy), except when every destination weighs zero: then they
	// share evenly (nothing says otherwise, and each answers for itself).
	// A route with one destination sends everything there.
	Weight uint32
	// Tier orders the destinations by preference: new connections start
	// in the lowest tier whose weights are not all zero, and fail over to
	// the next tier only when every destination of theirs has failed (an
	// affinity: this cluster first, or regions in order). 0 for all is no
	// preference.
	Tier int
}

// Route is one egress port. A mirror Service has exactly one destination
// (contracts.md: ferry.dev/source-cluster, namespace, ferry.dev/remote-service,
// port). A clusterset service lists several: each new connection starts at
// a destination chosen in proportion to the weights (see picker), goes to
// the first live one from there that accepts it, in route order, and moves
// on only while nothing has been sent (the remote is down, draining,
// overloaded or has no ready endpoint), so failover never replays client
// bytes.
type Route struct {
	Port int
	// Namespace is the namespace of the local Service that owns the port:
	// the CallerPolicy decides who may use it from this.
	Namespace    string
	Destinations []Destination
	// Clusterset marks a clusterset service's port: its connections are
	// also counted per (service, destination cluster), and over the last
	// minute, for `ferry traffic`.
	Clusterset bool
}

// EgressOptions configure NewEgress. TLS is required.
type EgressOptions struct {
	// TLS provides our client certificate and verifies each remote against
	// the identity its Link names; *identity.Source satisfies it.
	TLS tunnel.ClientTLS
	// ListenHost is the address egress ports bind to (default all
	// interfaces: kube-proxy sends mirror traffic to the pod IP).
	ListenHost string
	// Dialer connects to remote gateways; defaults to a *net.Dialer.
	Dialer Dialer
	// PoolSize is the number of tunnel sessions per remote (default 2).
	PoolSize int
	// RemoteDialTimeout bounds the TCP connect to a remote gateway.
	RemoteDialTimeout time.Duration
	// LocalEndpoints lists the ready local endpoints of the routes' local
	// destinations (the ingress's EndpointPicker), and BackendDialer
	// connects to them (default a *net.Dialer). A route with a local
	// destination is refused without LocalEndpoints.
	LocalEndpoints EndpointPicker
	BackendDialer  Dialer
	// Callers decides who may use each egress port. Required: there is no
	// default that is both safe and works, so a caller says what it wants
	// (AnyCaller for tests).
	Callers CallerPolicy
	// CallerMode is what happens to a refused caller (default
	// CallerEnforce).
	CallerMode CallerMode
	Limits     Limits
	Metrics    *Metrics
	Logger     *slog.Logger
}

// Egress listens on the egress ports and carries each accepted connection
// to a remote gateway over the tunnel. Routes and remotes change live.
type Egress struct {
	// ctx is the caller's: every connection lives in it.
	ctx    context.Context
	o      EgressOptions
	client *tunnel.Client
	// local connects to the local destinations' endpoints; nil without
	// LocalEndpoints.
	local *backends
	log   *slog.Logger
	conns *connSet
	// eject keeps the destinations whose last attempt failed.
	eject *ejector
	// refusals caps the log lines about refused callers: a hostile pod
	// controls how often they happen.
	refusals logLimiter

	mu        sync.Mutex
	listeners map[int]*egressListener
	closed    bool
}

type egressListener struct {
	ln    net.Listener
	route atomic.Pointer[activeRoute]
}

// activeRoute is a listener's route and its round-robin counter: the n-th
// connection (from 0) starts at destination n mod len(Destinations). A
// SetRoutes that leaves the port's destinations as they were keeps the
// counter, so unrelated route churn does not skew the spread towards the
// first destination; changed destinations start a fresh rotation.
type activeRoute struct {
	Route
	steer steer
	// health holds each destination's ejection state, by index.
	health []destHealth
	next   atomic.Uint64
}

func (e *Egress) newActiveRoute(r Route) *activeRoute {
	a := &activeRoute{Route: r, steer: newSteer(r.Destinations), health: make([]destHealth, len(r.Destinations))}
	for i, d := range r.Destinations {
		a.health[i] = e.eject.health(d)
	}
	return a
}

// Default sets the Logger, Metrics and CallerMode when unset. NewEgress calls it;
// Limits arrive complete from their owner (gatewayd's Options.Default).
func (o *EgressOptions) Default() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil) // cannot fail without a registry
	}
	if o.CallerMode == "" {
		o.CallerMode = CallerEnforce
	}
}

// NewEgress builds the egress; call SetRemotes and SetRoutes. The
// connections it serves live in ctx: when ctx ends they end. To drain, call
// Shutdown rather than ending ctx.
func NewEgress(ctx context.Context, o EgressOptions) (*Egress, error) {
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	o.Default()
	if o.Callers == nil {
		return nil, errors.New("gateway: egress: no CallerPolicy (EgressOptions.Callers)")
	}
	if err := o.CallerMode.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: egress: %w", err)
	}
	var dialer tunnel.ContextDialer
	if o.Dialer != nil {
		dialer = o.Dialer
	}
	client, err := tunnel.NewClient(tunnel.ClientOptions{
		TLS: o.TLS, Dialer: dialer, Limits: o.Limits.Tunnel, PoolSize: o.PoolSize,
		DialTimeout: o.RemoteDialTimeout, Observer: observer{o.Metrics}, Logger: o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: egress: %w", err)
	}
	e := &Egress{
		ctx: ctx, o: o, client: client, log: o.Logger.With("component", "egress"),
		conns:     newConnSet(o.Limits.MaxEgressConns, o.Limits.MaxEgressConnsPerClient),
		listeners: map[int]*egressListener{},
		refusals:  logLimiter{burst: 20},
	}
	e.eject = newEjector(o.Limits.EjectionBase, o.Limits.EjectionMax, o.Limits.AttemptTimeout, o.Limits.QuietAfter, time.Now, func(cluster, scope string) {
		o.Metrics.Ejections.WithLabelValues(cluster, scope).Inc()
	})
	if o.LocalEndpoints != nil {
		e.local = newBackends(o.LocalEndpoints, o.BackendDialer, time.Now, &e.o.Limits)
	}
	return e, nil
}

// SetRemotes replaces the remote clusters (from Links). Sessions to
// unchanged remotes are kept; see tunnel.Client.SetRemotes.
func (e *Egress) SetRemotes(remotes map[string]tunnel.Remote) { e.client.SetRemotes(remotes) }

// RemoteLive reports whether a tunnel session to cluster is up, for the
// wiring's probe of remote health.
func (e *Egress) RemoteLive(cluster string) bool { return e.client.Live(cluster) }

// RetiringSessions is the outbound tunnel sessions retired but still
// carrying streams.
func (e *Egress) RetiringSessions() int { return e.client.RetiringSessions() }

// SetRoutes makes the egress ports exactly routes: new ports start
// listening, removed ports stop (their running connections continue), and
// changed routes apply to the next connection. Ports that fail to bind are
// reported in the error and are retried by the next SetRoutes; every other
// route is applied regardless.
func (e *Egress) SetRoutes(routes []Route) error {
	want := make(map[int]Route, len(routes))
	var errs []error
	for _, r := range routes {
		if err := validateRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := e.canReach(r); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := want[r.Port]; dup {
			errs = append(errs, fmt.Errorf("gateway: egress port %d routed twice", r.Port))
			continue
		}
		r.Destinations = slices.Clone(r.Destinations)
		want[r.Port] = r
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("gateway: egress is shut down")
	}
	e.eject.keepOnly(want)
	e.clustersetSeries(want)
	for port, l := range e.listeners {
		if _, ok := want[port]; !ok {
			_ = l.ln.Close()
			delete(e.listeners, port)
			e.log.Info("egress port closed", "port", port)
		}
	}
	for port, r := range want {
		if l, ok := e.listeners[port]; ok {
			cur := l.route.Load()
			switch {
			case !slices.Equal(cur.Destinations, r.Destinations):
				l.route.Store(e.newActiveRoute(r))
			case cur.Namespace != r.Namespace || cur.Clusterset != r.Clusterset:
				// Same destinations: the rotation carries on.
				next := e.newActiveRoute(r)
				next.next.Store(cur.next.Load())
				l.route.Store(next)
			}
			continue
		}
		if err := e.roomForListener(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: egress port %d: %w", port, err))
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(e.o.ListenHost, strconv.Itoa(port)))
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway: egress port %d: %w%s", port, err, outOfFiles(err, len(e.listeners))))
			continue
		}
		l := &egressListener{ln: ln}
		l.route.Store(e.newActiveRoute(r))
		e.listeners[port] = l
		go e.serve(l)
		e.log.Info("egress port open", "port", port, "destinations", len(r.Destinations))
	}
	return joinCapped(errs)
}

// maxRouteErrors bounds the errors SetRoutes reports one by one: a cause
// common to thousands of ports (the file reserve, at 10,000 imports)
// would otherwise make one log line of megabytes on every retry.
const maxRouteErrors = 8

// joinCapped joins the first maxRouteErrors of errs and counts the rest.
func joinCapped(errs []error) error {
	if len(errs) <= maxRouteErrors {
		return errors.Join(errs...)
	}
	more := fmt.Errorf("gateway: and %d more egress port errors", len(errs)-maxRouteErrors)
	return errors.Join(append(errs[:maxRouteErrors:maxRouteErrors], more)...)
}

// canReach refuses a route with a local destination when this egress has
// no LocalEndpoints to reach it through.
func (e *Egress) canReach(r Route) error {
	for _, d := range r.Destinations {
		if d.Local && e.local == nil {
			return fmt.Errorf("gateway: egress port %d: a local destination, but no LocalEndpoints", r.Port)
		}
	}
	return nil
}

func validateRoute(r Route) error {
	if r.Port < 1 || r.Port > 65535 {
		return fmt.Errorf("gateway: egress port %d out of range", r.Port)
	}
	if len(r.Destinations) == 0 {
		return fmt.Errorf("gateway: egress port %d has no destination", r.Port)
	}
	if r.Namespace == "" {
		return fmt.Errorf("gateway: egress port %d has no namespace to check callers against", r.Port)
	}
	for _, d := range r.Destinations {
		if err := d.Target.Validate(); err != nil {
			return fmt.Errorf("gateway: egress port %d: %w", r.Port, err)
		}
	}
	return nil
}

// Addr returns the bound address of an egress port, or nil.
func (e *Egress) Addr(port int) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l, ok := e.listeners[port]; ok {
		return l.ln.Addr()
	}
	return nil
}

func (e *Egress) serve(l *egressListener) {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return // closed by SetRoutes or Shutdown
			}
			// EMFILE and friends pass: back off rather than drop the port.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			e.log.Warn("egress accept failed", "port", portOf(l.ln), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// The caller first: a refused caller takes no connection slot and
		// nothing is dialed for it.
		if !e.callerAllowed(c, l) {
			resetClose(c)
			continue
		}
		if reason := e.conns.add(c); reason != "" {
			r := l.route.Load()
			e.o.Metrics.EgressFailed.WithLabelValues(r.Destinations[0].Cluster, reason).Inc()
			resetClose(c)
			continue
		}
		r := l.route.Load()
		go e.handle(c, l, r, r.next.Add(1)-1)
	}
}

// callerAllowed asks the CallerPolicy about c for l's route, counts a
// refusal, and says whether to serve c.
func (e *Egress) callerAllowed(c net.Conn, l *egressListener) bool {
	ns := l.route.Load().Namespace
	addr := callerAddr(c)
	reason := e.o.Callers.Refuse(addr, ns)
	if reason == "" {
		return true
	}
	mode := e.o.CallerMode
	e.o.Metrics.EgressCallersRefused.WithLabelValues(reason, string(mode)).Inc()
	if e.refusals.allow(e.log) {
		e.log.Info("egress caller refused", "caller", addr.String(), "namespace", ns, "port", portOf(l.ln), "reason", reason, "mode", mode)
	}
	return mode == CallerAudit
}

func (e *Egress) handle(c net.Conn, l *egressListener, r *activeRoute, turn uint64) {
	defer e.conns.done(c)
	m := e.o.Metrics
	m.EgressActive.Inc()
	defer m.EgressActive.Dec()

	st, dest, release, err := e.open(r, turn)
	if err != nil {
		// A reset tells the client "refused", not "empty response".
		resetClose(c)
		return
	}
	defer release()
	export := dest.Target.Export()
	m.EgressOpened.WithLabelValues(dest.Cluster, export).Inc()
	toRemote := m.EgressBytes.WithLabelValues("to_remote", dest.Cluster, export)
	fromRemote := m.EgressBytes.WithLabelValues("from_remote", dest.Cluster, export)
	aToB, bToA := func(n int) { toRemote.Add(float64(n)) }, func(n int) { fromRemote.Add(float64(n)) }
	// A connection that outlived its route (replaced or removed while it
	// opened) counts in no per-service series: they may be gone already.
	if r.Clusterset && l.route.Load() == r {
		m.ClustersetConns.WithLabelValues(export, dest.Cluster).Inc()
		m.recent.add(export, dest.Cluster)
		csTo := m.ClustersetBytes.WithLabelValues("to_remote", export, dest.Cluster)
		csFrom := m.ClustersetBytes.WithLabelValues("from_remote", export, dest.Cluster)
		aToB = func(n int) { toRemote.Add(float64(n)); csTo.Add(float64(n)) }
		bToA = func(n int) { fromRemote.Add(float64(n)); csFrom.Add(float64(n)) }
	}
	up, down, err := tunnel.Splice(e.ctx, asConn(c), st, tunnel.SpliceOptions{
		IdleTimeout: e.o.Limits.IdleTimeout, AToB: aToB, BToA: bToA,
	})
	e.log.Debug("egress connection done", "remote", dest.Cluster, "local", dest.Local, "export", export,
		"bytes_to_remote", up, "bytes_from_remote", down, "err", err)
}

// Shutdown drains egress: ports stop accepting, running connections finish
// until ctx ends and are then cut, and the tunnel sessions are closed.
func (e *Egress) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	for port, l := range e.listeners {
		_ = l.ln.Close()
		delete(e.listeners, port)
	}
	e.mu.Unlock()
	err := e.conns.drain(ctx)
	_ = e.client.Close()
	if err != nil {
		return fmt.Errorf("gateway: egress drain cut short: %w", err)
	}
	return nil
}

// ActiveConns is the number of client connections being relayed.
func (e *Egress) ActiveConns() int { return e.conns.count() }

func resetClose(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	_ = c.Close()
}

// connSet tracks live client connections so drain can wait for them and
// then cut the rest, and enforces MaxEgressConns and
// MaxEgressConnsPerClient.
type connSet struct {
	max, maxPerClient int
	mu                sync.Mutex
	conns             map[net.Conn]string // client address
	perClient         map[string]int
	closed            bool
	zero              chan struct{}
}

func newConnSet(max, maxPerClient int) *connSet {
	return &connSet{max: max, maxPerClient: maxPerClient, conns: map[net.Conn]string{}, perClient: map[string]int{}, zero: make(chan struct{})}
}

// add admits c, or says which limit refuses it.
func (s *connSet) add(c net.Conn) (refused string) {
	client := clientOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || len(s.conns) >= s.max:
		return ReasonConnLimit
	case s.perClient[client] >= s.maxPerClient:
		return ReasonClientConnLimit
	}
	s.conns[c] = client
	s.perClient[client]++
	return ""
}

// clientOf is a connection's client address without the port.
func clientOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

func (s *connSet) done(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if client, ok := s.conns[c]; ok {
		if s.perClient[client]--; s.perClient[client] <= 0 {
			delete(s.perClient, client)
		}
	}
	delete(s.conns, c)
	if s.closed && len(s.conns) == 0 {
		select {
		case <-s.zero:
		default:
			close(s.zero)
		}
	}
}

func (s *connSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *connSet) drain(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if len(s.conns) == 0 {
		select {
		case <-s.zero:
		default:
			close(s.zero)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.zero:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		resetClose(c)
	}
	s.mu.Unlock()
	return ctx.Err()
}

func portOf(ln net.Listener) int {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}
