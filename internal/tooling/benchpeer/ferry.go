package benchpeer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/tunnel"
)

// The export every Ferry stream targets.
var benchTarget = tunnel.Target{Namespace: "bench", Service: "echo", Port: 80}

// ferryPair is east's ingress and west's egress on loopback, with one
// route to the backend: what two ferry-gateway Pods do, minus Kubernetes.
type ferryPair struct {
	in   *gateway.Ingress
	eg   *gateway.Egress
	addr string // the egress port clients dial
	// ingress is east's tunnel address; wan are egress ports whose tunnel
	// goes through the delay relays given to startFerry, in their order.
	ingress string
	wan     []string
	// cipher is what ingress negotiated with egress's certificate; ingress
	// is a Go server, which picks by its own preference.
	cipher string
}

// startFerry builds the pair with production limits and PoolSize (zero
// values take the defaults), so the figures are what a deployment gets, but
// for the stream bounds, raised so that idle connections fit (report note).
// Each address in relays is a delay relay towards ingress: a second
// remote, "east-wan<i>", and an egress port of its own.
func startFerry(ctx context.Context, backendAddr string, idle int, relays []string) (*ferryPair, error) {
	m, err := newMesh()
	if err != nil {
		return nil, err
	}
	eastSrc, err := m.source(m.east)
	if err != nil {
		return nil, err
	}
	westSrc, err := m.source(m.west)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)

	set := exports.NewPublisher()
	set.Publish(exports.Of(exports.TCP(benchTarget.Namespace, benchTarget.Service, int32(benchTarget.Port))), nil)
	endpoints := gateway.NewEndpointTable()
	endpoints.Set(benchTarget.Namespace, benchTarget.Service, benchTarget.Port, []string{backendAddr})

	lim := gateway.DefaultLimits()
	streams := int64(idle + 512)
	lim.Tunnel.MaxStreamsPerSession = max(lim.Tunnel.MaxStreamsPerSession, int(streams))
	// Served streams may hold half of a caller's budget in opening windows
	// of 256 KiB each (tunnel.streamBudget).
	lim.Tunnel.MaxCallerStreamMemory = max(lim.Tunnel.MaxCallerStreamMemory, 2*streams*(256<<10))
	lim.Tunnel.MaxTotalStreamMemory = max(lim.Tunnel.MaxTotalStreamMemory, 2*lim.Tunnel.MaxCallerStreamMemory)
	lim.MaxEgressConnsPerClient = max(lim.MaxEgressConnsPerClient, int(streams))
	in, err := gateway.NewIngress(gateway.IngressOptions{
		Local: m.east.id, TLS: eastSrc, Authorizer: gateway.NewExportAuthorizer(set), Endpoints: endpoints, Limits: lim, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("benchpeer: ingress: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchpeer: ingress listen: %w", err)
	}
	go func() { _ = in.Serve(ctx, ln) }()

	eg, err := gateway.NewEgress(ctx, gateway.EgressOptions{
		TLS: westSrc, ListenHost: "127.0.0.1", Limits: lim, Logger: log,
		// The benchmark's clients are not pods; it measures the data path.
		Callers: gateway.AnyCaller,
	})
	if err != nil {
		_ = in.Shutdown(context.Background())
		return nil, fmt.Errorf("benchpeer: egress: %w", err)
	}
	f := &ferryPair{in: in, eg: eg, ingress: ln.Addr().String()}
	remotes := map[string]tunnel.Remote{"east": {Addresses: []string{f.ingress}, Identity: m.east.id}}
	clusters := []string{"east"}
	for i, r := range relays {
		name := fmt.Sprintf("east-wan%d", i)
		remotes[name] = tunnel.Remote{Addresses: []string{r}, Identity: m.east.id}
		clusters = append(clusters, name)
	}
	eg.SetRemotes(remotes)
	if err := f.route(clusters); err != nil {
		f.close()
		return nil, err
	}
	// Wait for the pooled sessions, so the first measured connection does
	// not pay for the TLS handshake that the design amortizes.
	if err := waitFor(ctx, 10*time.Second, func() bool { return eg.RemoteLive("east") }); err != nil {
		f.close()
		return nil, fmt.Errorf("benchpeer: tunnel session to east never came up: %w", err)
	}
	if f.cipher, err = probeCipher(ctx, ln.Addr().String(), westSrc.ClientTLSConfig(m.east.id)); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// route opens one egress port per cluster, the first being f.addr and the
// others f.wan. SetRoutes wants concrete ports, so free ones are picked
// and, if another process takes one first, picked again.
func (f *ferryPair) route(clusters []string) error {
	var errs []error
	for range 5 {
		var routes []gateway.Route
		var addrs []string
		for _, c := range clusters {
			port, err := freePort()
			if err != nil {
				return err
			}
			routes = append(routes, gateway.Route{Port: port, Namespace: benchTarget.Namespace, Destinations: []gateway.Destination{{Cluster: c, Target: benchTarget}}})
			addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		}
		err := f.eg.SetRoutes(routes)
		if err == nil {
			f.addr, f.wan = addrs[0], addrs[1:]
			return nil
		}
		errs = append(errs, err)
		_ = f.eg.SetRoutes(nil)
	}
	return fmt.Errorf("benchpeer: egress ports: %w", errors.Join(errs...))
}

func (f *ferryPair) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = gateway.Drain(ctx, nil, 0, f.eg, f.in)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("benchpeer: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every 5 ms until it holds, ctx ends or within passes.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// probeCipher completes one handshake as egress would and reports the
// cipher suite, so the report can show both proxies used the same one.
func probeCipher(ctx context.Context, addr string, cfg *tls.Config) (string, error) {
	cfg.NextProtos = []string{tunnel.ALPNTunnel}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("benchpeer: TLS probe of ingress: %w", err)
	}
	defer c.Close()
	return tls.CipherSuiteName(c.(*tls.Conn).ConnectionState().CipherSuite), nil
}
