package scalebench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// feedClient is one importing cluster as the exporter's feed sees it: a
// feed.Client with its own cluster identity (a leaf for
// ferry-system/ferry-controller from an issuer of its own, under the
// sandbox's mesh root, which is what the feed server authorises), and a
// Handler that keeps the export set and records when each RevLabel value of
// each export first arrived. It mirrors nothing: it stands for the feed's
// work per importer, not the importer's.
type feedClient struct {
	name string
	// read counts bytes read from the client's TCP connections: TLS
	// records, so HTTP/2 and gRPC framing and heartbeats are included.
	read        atomic.Int64
	disconnects atomic.Int64
	mu          sync.Mutex
	set         map[exports.Key]string // export → its RevLabel value
	revs        map[string]time.Time   // "<name>=<rev>" → first seen
	reasons     map[string]int         // why streams ended → how often
	wake        chan struct{}
	cancel      context.CancelFunc
	done        chan struct{}
}

func (f *feedClient) Apply(u feed.Update) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.Snapshot {
		clear(f.set)
	}
	for _, e := range u.Upserts {
		rev := e.Labels[RevLabel]
		f.set[e.Key] = rev
		k := e.Name + "=" + rev
		if _, seen := f.revs[k]; !seen {
			f.revs[k] = now
		}
	}
	for _, k := range u.Deletes {
		delete(f.set, k)
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *feedClient) Connected() {}

// Disconnected counts a stream that ended and keeps why: a healthy run has
// none, so each is worth reading.
func (f *feedClient) Disconnected(err error) {
	f.disconnects.Add(1)
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	f.mu.Lock()
	f.reasons[msg]++
	f.mu.Unlock()
}
func (f *feedClient) Heartbeat(version uint64) {}

// waitFor blocks until cond (called with f.mu held) holds, or ctx ends.
func (f *feedClient) waitFor(ctx context.Context, cond func() bool) error {
	return waitWoken(ctx, &f.mu, func() chan struct{} { return f.wake }, cond)
}

// waitExports waits until the client holds n exports.
func (f *feedClient) waitExports(ctx context.Context, n int) error {
	err := f.waitFor(ctx, func() bool { return len(f.set) >= n })
	if err != nil {
		f.mu.Lock()
		have := len(f.set)
		f.mu.Unlock()
		return fmt.Errorf("feed client %s holds %d/%d exports: %w", f.name, have, n, err)
	}
	return nil
}

// waitRev waits until export name has carried rev, and returns when it
// first arrived.
func (f *feedClient) waitRev(ctx context.Context, name, rev string) (time.Time, error) {
	var at time.Time
	err := f.waitFor(ctx, func() bool {
		t, ok := f.revs[name+"="+rev]
		at = t
		return ok
	})
	if err != nil {
		return at, fmt.Errorf("feed client %s: %s=%s: %w", f.name, name, rev, err)
	}
	return at, nil
}

// Stop ends the client's subscription and waits for it.
func (f *feedClient) Stop() {
	f.cancel()
	<-f.done
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// startFeedClient subscribes a client for cluster name to the exporter's
// feed, dialling from inside the importer's network namespace (the WAN is
// only reachable from a site). Its feed runs until Stop.
func startFeedClient(ctx context.Context, sb *sandbox.Sandbox, exporter, from *sandbox.Cluster, name string) (*feedClient, error) {
	issuer, err := sb.Root.NewIssuer(name, 0)
	if err != nil {
		return nil, fmt.Errorf("feed client %s: issuer: %w", name, err)
	}
	leaf, err := issuer.IssueLeaf(contract.ControllerID(sb.Mesh, name), 0)
	if err != nil {
		return nil, fmt.Errorf("feed client %s: leaf: %w", name, err)
	}
	bundle, err := identity.NewBundle(sb.Mesh, sb.Root.Cert)
	if err != nil {
		return nil, fmt.Errorf("feed client %s: bundle: %w", name, err)
	}
	src, err := identity.NewSource(leaf, bundle)
	if err != nil {
		return nil, fmt.Errorf("feed client %s: %w", name, err)
	}
	f := &feedClient{
		name: name, set: map[exports.Key]string{}, revs: map[string]time.Time{}, reasons: map[string]int{},
		wake: make(chan struct{}), done: make(chan struct{}),
	}
	c, err := feed.NewClient(feed.ClientConfig{
		Addresses: []string{exporter.GatewayAddr()},
		ServerID:  contract.GatewayID(sb.Mesh, exporter.Name),
		TLS:       src,
		// The clients' own logs would drown the progress lines; a
		// reconnect is counted (Disconnected) and reported instead.
		Logger: slog.New(slog.DiscardHandler),
		Dialer: func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := from.Site.NS.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: conn, n: &f.read}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("feed client %s: %w", name, err)
	}
	var runCtx context.Context
	runCtx, f.cancel = context.WithCancel(ctx)
	go func() {
		defer close(f.done)
		_ = c.Run(runCtx, f, 0) // returns nil when runCtx ends
	}()
	return f, nil
}

// fanout subscribes M feed clients to the exporter's feed, waits until each
// holds all N exports, then changes the target export K times and measures
// the feed server's cost per change: CPU, bytes per importer, and the time
// until every client (and the importer's mirror) saw it.
func (b *bench) fanout(ctx context.Context) error {
	m := b.cfg.Importers
	b.logf("fan-out: subscribing %d feed clients, each with its own cluster identity, to %s's feed", m, exporterName)
	start := time.Now()
	var clients []*feedClient
	defer func() {
		for _, c := range clients {
			c.Stop()
		}
	}()
	for i := range m {
		c, err := startFeedClient(ctx, b.sb, b.exp, b.imp, fmt.Sprintf("fan-%02d", i+1))
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		if err := c.waitExports(ctx, b.cfg.Exports); err != nil {
			return err
		}
	}
	b.r.FanoutSnapshot = time.Since(start)
	b.logf("all %d clients hold %d exports after %s", m, b.cfg.Exports, b.r.FanoutSnapshot.Round(time.Millisecond))

	pid := b.exp.Gateway.PID()
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	wire0 := wireBytes(clients)
	feed0, err := b.feedBytes(ctx, clients)
	if err != nil {
		return err
	}
	var all, each, mirror []time.Duration
	for k := range b.cfg.Changes {
		rev := fmt.Sprintf("b%d", k+1)
		t0 := time.Now()
		if err := setRev(ctx, b.expClient, b.target, rev); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, changeTimeout)
		var last time.Duration
		for _, c := range clients {
			at, err := c.waitRev(wctx, exportName(b.target), rev)
			if err != nil {
				cancel()
				return fmt.Errorf("change %d: %w", k+1, err)
			}
			d := at.Sub(t0)
			each = append(each, d)
			last = max(last, d)
		}
		at, err := b.mirrors.waitRev(wctx, exportName(b.target), rev)
		cancel()
		if err != nil {
			return fmt.Errorf("change %d: mirror never showed %s=%s: %w", k+1, RevLabel, rev, err)
		}
		all = append(all, last)
		mirror = append(mirror, at.Sub(t0))
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	wire1 := wireBytes(clients)
	feed1, err := b.feedBytes(ctx, clients)
	if err != nil {
		return err
	}
	perClientChange := float64(b.cfg.Changes * m)
	b.r.FanoutCPUPerChange = (cpu1 - cpu0) / float64(b.cfg.Changes)
	b.r.FanoutWireBytesPerChange = float64(wire1-wire0) / perClientChange
	b.r.FanoutFeedBytesPerChange = (feed1 - feed0) / perClientChange
	b.r.FanoutAll, b.r.FanoutEach, b.r.FanoutMirrorLatency = summarise(all), summarise(each), summarise(mirror)
	b.r.FanoutDisconnects = map[string]int{}
	for _, c := range clients {
		b.r.FanoutReconnects += c.disconnects.Load()
		c.mu.Lock()
		for k, v := range c.reasons {
			b.r.FanoutDisconnects[k] += v
		}
		c.mu.Unlock()
	}
	for k, v := range b.r.FanoutDisconnects {
		b.logf("fan-out: %d feed streams ended: %s", v, k)
	}
	if text, err := b.exp.GatewayMetrics(ctx); err == nil {
		b.r.FanoutRejected, _ = sandbox.MetricSum(text, "ferry_feed_rejected_total", nil)
	}
	if b.r.FanoutGateway, err = readMemory(ctx, b.exp.Gateway, b.exp.GatewayMetrics); err != nil {
		return fmt.Errorf("exporting gateway: %w", err)
	}
	b.logf("fan-out: gateway %s; CPU %.2f ms/change; %.0f B wire, %.0f B feed per change per client; all clients %s",
		b.r.FanoutGateway, b.r.FanoutCPUPerChange*1e3, b.r.FanoutWireBytesPerChange, b.r.FanoutFeedBytesPerChange, b.r.FanoutAll)
	// What each subscriber costs the exporting gateway, with all of them
	// still connected.
	if b.cfg.Profiles != "" {
		if err := b.saveProfile(ctx, b.exp, contract.GatewayName, "heap", "fan-out", profileSlack); err != nil {
			return err
		}
	}
	return nil
}

func wireBytes(clients []*feedClient) int64 {
	var n int64
	for _, c := range clients {
		n += c.read.Load()
	}
	return n
}

// feedBytes is the gateway's own count of feed bytes sent to the clients
// (ferry_feed_bytes_sent_total, encoded messages before gRPC, HTTP/2 and
// TLS framing).
func (b *bench) feedBytes(ctx context.Context, clients []*feedClient) (float64, error) {
	text, err := b.exp.GatewayMetrics(ctx)
	if err != nil {
		return 0, fmt.Errorf("exporting gateway /metrics: %w", err)
	}
	var sum float64
	for _, c := range clients {
		v, err := sandbox.MetricSum(text, "ferry_feed_bytes_sent_total", map[string]string{"cluster": c.name})
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
