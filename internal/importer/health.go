package importer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
)

// Probe defaults, as documented on ferryv1.ProbeSpec.
const (
	DefaultProbePeriod           = 3 * time.Second
	DefaultProbeTimeout          = 2 * time.Second
	DefaultProbeFailureThreshold = 3
)

// ProbeTarget is the remote gateway one probe checks.
type ProbeTarget struct {
	Link      string
	Addresses []string
	Identity  identity.ID
}

// Prober checks the remote gateway through the data path. It returns nil
// when the gateway answered as the expected identity. The gateway package
// may supply a deeper probe (a tunnel round trip); TLSProber is the default.
type Prober interface {
	Probe(ctx context.Context, t ProbeTarget) error
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, t ProbeTarget) error

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, t ProbeTarget) error { return f(ctx, t) }

// ProbeALPN is the protocol the probe offers: the gateway serves the feed
// and the probe under "h2" (docs/contracts.md).
const ProbeALPN = "h2"

// TLSProber completes a TLS handshake with the first gateway address that
// answers and verifies that it presents the Link's identity. It proves that
// the gateway's listener is up, reachable from here, and holds a valid
// certificate, which is what the data path needs.
type TLSProber struct {
	Source *identity.Source
	// Dial defaults to a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Probe implements Prober.
func (p TLSProber) Probe(ctx context.Context, t ProbeTarget) error {
	if p.Source == nil {
		return errors.New("no controller identity to probe with")
	}
	dial := p.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	var errs []error
	for _, addr := range t.Addresses {
		err := p.handshake(ctx, dial, addr, t.Identity)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (p TLSProber) handshake(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string, expect identity.ID) error {
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	cfg := p.Source.ClientTLSConfig(expect)
	cfg.NextProtos = []string{ProbeALPN}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return err
	}
	// In TLS 1.3 the client finishes its handshake before the server has
	// judged the client's certificate; a refusal arrives as an alert on
	// the first read. An h2 server speaks first (SETTINGS), so acceptance
	// shows at once; silence until the deadline also counts as accepted.
	deadline := time.Now().Add(probeAcceptWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	var one [1]byte
	_, err = conn.Read(one[:])
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return fmt.Errorf("the remote gateway refused this controller's identity: %w", err)
	}
	return conn.Close()
}

// probeAcceptWait bounds the wait for the server's first bytes (or its
// refusal) after the handshake.
const probeAcceptWait = 250 * time.Millisecond

// probeSettings are a Link's probe settings with defaults applied.
type probeSettings struct {
	Period, Timeout time.Duration
	Threshold       int
	StalenessLimit  time.Duration // 0: never withdraw
}

func settingsOf(l *ferryv1.Link) probeSettings {
	s := probeSettings{Period: DefaultProbePeriod, Timeout: DefaultProbeTimeout, Threshold: DefaultProbeFailureThreshold}
	if p := l.Spec.Probe.Period; p != nil && p.Duration > 0 {
		s.Period = p.Duration
	}
	if p := l.Spec.Probe.Timeout; p != nil && p.Duration > 0 {
		s.Timeout = p.Duration
	}
	if p := l.Spec.Probe.FailureThreshold; p != nil && *p > 0 {
		s.Threshold = int(*p)
	}
	if l.Spec.StalenessLimit != nil && l.Spec.StalenessLimit.Duration > 0 {
		s.StalenessLimit = l.Spec.StalenessLimit.Duration
	}
	return s
}

// healthTracker turns probe results into a health level. It is driven with
// explicit times so that it is tested without sleeping.
type healthTracker struct {
	mu        sync.Mutex
	settings  probeSettings
	started   time.Time // session start: the floor of "last contact"
	probed    bool
	answered  bool // a probe has succeeded since the session started
	failures  int
	lastOK    time.Time
	lastError string
	// downError is the error of the probe that crossed the threshold: a
	// stable description for status while the remote stays down.
	downError string
}

func newHealthTracker(s probeSettings, now time.Time) *healthTracker {
	return &healthTracker{settings: s, started: now}
}

// observe records one probe result.
func (h *healthTracker) observe(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probed = true
	if err == nil {
		h.failures, h.lastOK, h.lastError, h.downError = 0, now, "", ""
		h.answered = true
		return
	}
	h.failures++
	h.lastError = err.Error()
	if h.failures == h.settings.Threshold {
		h.downError = h.lastError
	}
}

// healthView is what status and the desired state need.
type healthView struct {
	Level     mirror.Health
	Probed    bool // false until the first probe result: health is assumed
	Failures  int
	LastError string
	DownError string
	// Unreachable is how long the remote has been silent (probes and feed),
	// when it is Unhealthy.
	Unreachable time.Duration
	// NeverAnswered: probes have failed and neither a probe nor the feed
	// has ever answered in this session. Such a remote is not trusted at
	// all (Unhealthy from the first failure, not after the threshold).
	NeverAnswered bool
}

// view computes the level at now. A remote is Healthy until the first probe
// result (assumed, so that a restart changes nothing), then Unhealthy at once
// if it has never answered (no probe success and no feed message in this
// session), else only once FailureThreshold probes in a row have failed.
// lastFeed is the last feed message: the
// staleness clock counts from the later of the last successful probe, the
// last feed message and the session's start, so a controller restart never
// withdraws mirrors early (at worst, late by the downtime).
func (h *healthTracker) view(now, lastFeed time.Time) healthView {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := healthView{Level: mirror.Healthy, Probed: h.probed, Failures: h.failures, LastError: h.lastError, DownError: h.downError}
	if !h.probed {
		return v // assumed until the first result: a restart changes nothing
	}
	if !h.answered && !lastFeed.After(h.started) {
		// The failure threshold forgives a remote that has answered for a
		// glitch; one that never has gets no such credit.
		v.NeverAnswered = true
		v.DownError = h.lastError
	} else if h.failures < h.settings.Threshold {
		return v
	}
	v.Level = mirror.Unhealthy
	contact := h.started
	for _, t := range []time.Time{h.lastOK, lastFeed} {
		if t.After(contact) {
			contact = t
		}
	}
	v.Unreachable = now.Sub(contact)
	if h.settings.StalenessLimit > 0 && v.Unreachable >= h.settings.StalenessLimit {
		v.Level = mirror.Stale
	}
	return v
}
