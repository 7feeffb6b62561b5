package tunnel

import (
	"cmp"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/libp2p/go-yamux/v5"
)

// ALPN protocol names on the gateway port (contracts.md).
const (
	ALPNTunnel = "ferry-tunnel/1"
	ALPNH2     = "h2"
)

// Limits are the transport's bounds. Every field has a default (see
// DefaultLimits), which Default sets; Validate refuses a zero, never reads
// it as "unlimited", so a forgotten field cannot silently remove a bound.
//
// Stream receive windows, the memory that authenticated callers can pin,
// are bounded in bytes: MaxCallerStreamMemory per caller identity across all
// of its sessions, and MaxTotalStreamMemory for all callers together (see
// streamBudget). Unauthenticated peers hold at most MaxPendingHandshakes
// TLS handshakes, of which one source address holds at most
// MaxPendingHandshakesPerIP.
type Limits struct {
	// HandshakeTimeout bounds the TLS handshake, both ways. A peer that
	// connects and stalls is closed after it.
	HandshakeTimeout time.Duration
	// ClientHelloTimeout bounds the wait for the peer's complete ClientHello
	// (within HandshakeTimeout, which still bounds the whole handshake): a
	// peer that connects and sends nothing frees its handshake slot after it.
	ClientHelloTimeout time.Duration
	// MaxPendingHandshakes bounds concurrent unauthenticated connections:
	// beyond it new connections are closed at once.
	MaxPendingHandshakes int
	// MaxPendingHandshakesPerIP bounds the share of MaxPendingHandshakes one
	// source address may hold (one IPv4 address, or one IPv6 /64), so a single
	// host cannot fill them all: beyond it its new connections are closed at
	// once. Peers behind one SNAT address share it.
	MaxPendingHandshakesPerIP int
	// MaxConnections bounds established TLS connections on the ingress port
	// (tunnel sessions plus handed-off h2 conns still being counted).
	MaxConnections int
	// MaxSessionsPerCaller bounds concurrent tunnel sessions from one caller
	// identity. Every replica of a remote gateway presents the same identity,
	// so this must exceed (remote replicas × egress PoolSize) with room for
	// reconnect overlap: 32 covers 12 replicas at the default pool of 2.
	MaxSessionsPerCaller int
	// MaxH2ConnsPerCaller bounds concurrent h2 (feed) connections from one
	// caller identity, counted until the feed server closes the handed-off
	// connection. A remote controller needs one per replica subscribed.
	MaxH2ConnsPerCaller int
	// MaxH2ResetsPerWindow and MaxH2SettingsPerWindow bound the RST_STREAM
	// and SETTINGS frames (acknowledgements aside) an h2 (feed) client may
	// send in H2GlitchWindow; past either its connection is closed (see the
	// h2 guard). A feed client sends one SETTINGS per connection and resets
	// a stream only when it gives it up.
	MaxH2ResetsPerWindow   int
	MaxH2SettingsPerWindow int
	// MaxStreamsPerSession bounds concurrent streams in one session; ingress
	// answers further streams with StatusOverloaded and egress opens new
	// streams on the least-loaded session that is below it.
	MaxStreamsPerSession int
	// MaxStreamWindow is the most a stream's receive window may grow to.
	// Every window opens at 256 KiB (the yamux spec fixes it) and doubles
	// while its reader keeps up with the path, judged against the session's
	// measured RTT, up to this: one stream then carries MaxStreamWindow per
	// round trip, 16 MiB at 50 ms is 320 MiB/s. Growth is bounded by the
	// stream memory limits below, not granted up front.
	MaxStreamWindow uint32
	// MaxCallerStreamMemory bounds the stream receive windows one caller
	// identity (one remote cluster's gateways) can pin on this gateway,
	// across all of its sessions (see streamBudget): served streams may
	// hold half of it in opening windows, beyond which new streams get
	// StatusOverloaded; windows may grow by a quarter of it; and a stream
	// that would take the caller over all of it closes the session that
	// opened it. On egress it bounds window growth per remote the same way.
	MaxCallerStreamMemory int64
	// MaxTotalStreamMemory bounds the same for all callers together.
	MaxTotalStreamMemory int64
	// AcceptBacklog bounds streams opened by the peer but not yet accepted;
	// yamux resets streams beyond it.
	AcceptBacklog int
	// KeepAliveInterval is how often an idle session is pinged, and
	// KeepAliveTimeout how long a ping (or a frame write) may take before the
	// session is declared dead. A dead peer is detected within their sum.
	KeepAliveInterval time.Duration
	KeepAliveTimeout  time.Duration
	// StreamOpenTimeout bounds opening a stream when the caller's context
	// has no deadline: the open, the header and the peer's reply. A session
	// whose peer stopped answering is found by the keep-alive.
	StreamOpenTimeout time.Duration
	// Lifetime bounds how long a live session or feed connection is trusted
	// without a new handshake (MaxConnectionAge, MaxConnectionAgeGrace,
	// TrustCheckInterval), on both sides.
	Lifetime
}

// DefaultLimits are production defaults; docs/gateway.md explains each.
func DefaultLimits() Limits {
	return Limits{
		HandshakeTimeout:          10 * time.Second,
		ClientHelloTimeout:        2 * time.Second,
		MaxPendingHandshakes:      128,
		MaxPendingHandshakesPerIP: 8,
		MaxConnections:            1024,
		MaxSessionsPerCaller:      32,
		MaxH2ConnsPerCaller:       4,
		MaxH2ResetsPerWindow:      100,
		MaxH2SettingsPerWindow:    20,
		MaxStreamsPerSession:      2048,
		MaxStreamWindow:           16 << 20,
		// Under the chart's 512 MiB memory limit: 384 MiB of stream buffers
		// at worst, of which 192 MiB are served streams' opening windows
		// (768 streams) and 96 MiB growth. One remote cluster has a third
		// of it: 256 served streams, and 32 MiB of growth, two windows at
		// their largest.
		MaxCallerStreamMemory: 128 << 20,
		MaxTotalStreamMemory:  384 << 20,
		AcceptBacklog:         256,
		KeepAliveInterval:     10 * time.Second,
		KeepAliveTimeout:      10 * time.Second,
		StreamOpenTimeout:     10 * time.Second,
		Lifetime:              DefaultLifetime(),
	}
}

// Default sets every zero field to its default: the one defaulting step,
// taken by whoever owns the Limits (gateway.Limits.Default, or a test).
// NewServer and NewClient only validate.
func (l *Limits) Default() {
	d := DefaultLimits()
	l.HandshakeTimeout = cmp.Or(l.HandshakeTimeout, d.HandshakeTimeout)
	l.ClientHelloTimeout = cmp.Or(l.ClientHelloTimeout, d.ClientHelloTimeout)
	l.MaxPendingHandshakes = cmp.Or(l.MaxPendingHandshakes, d.MaxPendingHandshakes)
	l.MaxPendingHandshakesPerIP = cmp.Or(l.MaxPendingHandshakesPerIP, d.MaxPendingHandshakesPerIP)
	l.MaxConnections = cmp.Or(l.MaxConnections, d.MaxConnections)
	l.MaxSessionsPerCaller = cmp.Or(l.MaxSessionsPerCaller, d.MaxSessionsPerCaller)
	l.MaxH2ConnsPerCaller = cmp.Or(l.MaxH2ConnsPerCaller, d.MaxH2ConnsPerCaller)
	l.MaxH2ResetsPerWindow = cmp.Or(l.MaxH2ResetsPerWindow, d.MaxH2ResetsPerWindow)
	l.MaxH2SettingsPerWindow = cmp.Or(l.MaxH2SettingsPerWindow, d.MaxH2SettingsPerWindow)
	l.MaxStreamsPerSession = cmp.Or(l.MaxStreamsPerSession, d.MaxStreamsPerSession)
	l.MaxStreamWindow = cmp.Or(l.MaxStreamWindow, d.MaxStreamWindow)
	l.MaxCallerStreamMemory = cmp.Or(l.MaxCallerStreamMemory, d.MaxCallerStreamMemory)
	l.MaxTotalStreamMemory = cmp.Or(l.MaxTotalStreamMemory, d.MaxTotalStreamMemory)
	l.AcceptBacklog = cmp.Or(l.AcceptBacklog, d.AcceptBacklog)
	l.KeepAliveInterval = cmp.Or(l.KeepAliveInterval, d.KeepAliveInterval)
	l.KeepAliveTimeout = cmp.Or(l.KeepAliveTimeout, d.KeepAliveTimeout)
	l.StreamOpenTimeout = cmp.Or(l.StreamOpenTimeout, d.StreamOpenTimeout)
	l.Lifetime.Default()
}

// Validate rejects limits that cannot work. Every limit must be set: a
// zero is refused, never read as "unlimited" (call Default first).
func (l Limits) Validate() error {
	if l.MaxStreamWindow < initialWindow {
		return fmt.Errorf("tunnel limits: MaxStreamWindow %d is below yamux's opening window of %d", l.MaxStreamWindow, initialWindow)
	}
	// A quarter of a caller's budget is growth: at least one window must be
	// able to reach its largest.
	if w := int64(l.MaxStreamWindow); l.MaxCallerStreamMemory < 4*w {
		return fmt.Errorf("tunnel limits: MaxCallerStreamMemory %d is below 4 × MaxStreamWindow (%d)", l.MaxCallerStreamMemory, 4*w)
	}
	if l.MaxTotalStreamMemory < l.MaxCallerStreamMemory {
		return fmt.Errorf("tunnel limits: MaxTotalStreamMemory %d is below MaxCallerStreamMemory %d", l.MaxTotalStreamMemory, l.MaxCallerStreamMemory)
	}
	for name, v := range map[string]int{
		"MaxPendingHandshakes": l.MaxPendingHandshakes, "MaxPendingHandshakesPerIP": l.MaxPendingHandshakesPerIP,
		"MaxConnections": l.MaxConnections, "MaxSessionsPerCaller": l.MaxSessionsPerCaller,
		"MaxH2ConnsPerCaller": l.MaxH2ConnsPerCaller, "MaxStreamsPerSession": l.MaxStreamsPerSession,
		"MaxH2ResetsPerWindow": l.MaxH2ResetsPerWindow, "MaxH2SettingsPerWindow": l.MaxH2SettingsPerWindow,
		"AcceptBacklog": l.AcceptBacklog,
	} {
		if v <= 0 {
			return fmt.Errorf("tunnel limits: %s is %v; it must be positive (Default sets every limit)", name, v)
		}
	}
	for name, v := range map[string]time.Duration{
		"HandshakeTimeout": l.HandshakeTimeout, "ClientHelloTimeout": l.ClientHelloTimeout,
		"KeepAliveInterval": l.KeepAliveInterval,
		"KeepAliveTimeout":  l.KeepAliveTimeout, "StreamOpenTimeout": l.StreamOpenTimeout,
	} {
		if v <= 0 {
			return fmt.Errorf("tunnel limits: %s is %v; it must be positive (Default sets every limit)", name, v)
		}
	}
	return l.Lifetime.Validate()
}

// windowUpdateFraction makes a receiver grant credit each time an eighth of
// its window was read, where upstream go-yamux waits for half: with half, a
// sender's credit swings between half its window and all of it, and one
// stream across 50 ms carried 27–34 MB/s in hack/bench; with an eighth,
// 42–58 (docs/benchmarks.md, "The muxer"). It is Ferry's patch to go-yamux
// (third_party/go-yamux/PATCHES.md).
const windowUpdateFraction = 8

// yamuxConfig maps the limits onto a yamux session.
func (l Limits) yamuxConfig(log *slog.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = l.AcceptBacklog
	c.EnableKeepAlive = true
	c.KeepAliveInterval = l.KeepAliveInterval
	// The RTT that window growth is judged against: measured when the
	// session opens and again this often, so a path that changes is seen.
	c.MeasureRTTInterval = l.KeepAliveInterval
	c.ConnectionWriteTimeout = l.KeepAliveTimeout
	// Twice the served streams: the rest is room for streams being refused
	// and for the peer's view of streams this side already closed. yamux
	// resets streams beyond it.
	c.MaxIncomingStreams = uint32(2 * l.MaxStreamsPerSession)
	c.InitialStreamWindowSize = initialWindow
	c.MaxStreamWindowSize = l.MaxStreamWindow
	c.WindowUpdateFraction = windowUpdateFraction
	c.LogOutput = slogWriter{log}
	return c
}

// slogWriter routes yamux's log lines to slog at debug level: its messages
// are per-stream noise that the gateway already reports itself.
type slogWriter struct{ l *slog.Logger }

func (s slogWriter) Write(p []byte) (int, error) {
	s.l.Debug(strings.TrimSpace(string(p)), "component", "yamux")
	return len(p), nil
}
