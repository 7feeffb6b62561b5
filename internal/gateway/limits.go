package gateway

import (
	"cmp"
	"fmt"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// Limits bound what one gateway will hold for its peers and clients.
// Default sets zero fields to DefaultLimits' and Validate refuses a zero, so
// a forgotten field never means "unlimited". docs/gateway.md has the table
// and the reasoning.
type Limits struct {
	// Tunnel holds the transport limits: TLS handshake timeout, connection,
	// session and stream caps, yamux window (= max frame) and keepalive.
	Tunnel tunnel.Limits

	// MaxHeaderBytes bounds a stream header (contracts.md).
	MaxHeaderBytes int
	// HeaderTimeout bounds the wait for a stream's header after it opened,
	// so a peer cannot park streams that never say what they want.
	HeaderTimeout time.Duration
	// IdleTimeout closes a proxied connection when no byte moved either way
	// for this long, and bounds how long one write may stall on a reader
	// that does not read. It applies on both ingress and egress.
	IdleTimeout time.Duration
	// DialTimeout bounds one TCP connect from ingress to a backend.
	DialTimeout time.Duration
	// DialAttempts is how many distinct endpoints ingress tries before it
	// gives up on a stream.
	DialAttempts int
	// EndpointBackoff is how long an endpoint that refused a connect is
	// skipped when others are available, so the next streams do not pay for
	// the same dead backend until EndpointSlices catch up.
	EndpointBackoff time.Duration
	// OpenTimeout bounds, on egress, the wait for a tunnel session and for
	// the remote's reply. It must exceed the remote's
	// DialAttempts × DialTimeout, or slow backends look like dead remotes.
	OpenTimeout time.Duration
	// AttemptTimeout bounds one attempt of a route with several
	// destinations, when another is left to try: the wait for the session,
	// the remote's reply and so for its backend dial. Past it the
	// connection goes to the next destination (nothing has been sent), and
	// the slow cluster is ejected. The last destination tried has the rest
	// of OpenTimeout, and a mirror's single destination all of it.
	AttemptTimeout time.Duration
	// QuietAfter is how long a cluster may leave attempts waiting with no
	// answer to any of them before new connections try it only after the
	// others: a hung gateway is noticed before the first AttemptTimeout
	// ends. It only reorders, so a false alarm costs nothing but the split
	// of that moment.
	QuietAfter time.Duration
	// EjectionBase is how long a destination whose attempt failed is tried
	// only after the others; each further failure in a row doubles it, up
	// to EjectionMax, with ±20% jitter.
	EjectionBase time.Duration
	EjectionMax  time.Duration
	// MaxEgressConns bounds concurrent client connections on all egress
	// ports together.
	MaxEgressConns int
	// MaxEgressConnsPerClient bounds the concurrent egress connections of
	// one client address (one pod), so that no client can take the whole
	// MaxEgressConns for everyone else.
	MaxEgressConnsPerClient int
	// FileReserve is how many descriptors of the process's open-file limit
	// egress listeners leave to everything else: connections, tunnels,
	// the admin port, the API clients. An egress port past it is refused
	// (ErrFileReserve), each on its own; the others keep listening.
	FileReserve int
	// DrainTimeout bounds graceful drain: after it, running streams are cut.
	DrainTimeout time.Duration
}

// DefaultLimits are the production defaults.
func DefaultLimits() Limits {
	return Limits{
		Tunnel:          tunnel.DefaultLimits(),
		MaxHeaderBytes:  tunnel.DefaultMaxHeaderBytes,
		HeaderTimeout:   10 * time.Second,
		IdleTimeout:     time.Hour,
		DialTimeout:     5 * time.Second,
		DialAttempts:    3,
		EndpointBackoff: 5 * time.Second,
		OpenTimeout:     20 * time.Second,
		// A healthy gateway replies within a round trip plus a local
		// connect; a second is ten times a cross-continent RTT, and keeps
		// failover of a hung gateway inside the 2 s that issue 12 asks.
		AttemptTimeout: time.Second,
		// Above any terrestrial round trip plus a local connect, so a
		// healthy far cluster is never taken for a quiet one.
		QuietAfter:     500 * time.Millisecond,
		EjectionBase:   time.Second,
		EjectionMax:    30 * time.Second,
		MaxEgressConns: 16384,
		// A sixteenth: room for a large connection pool, while 16 busy
		// clients are needed to fill the gateway.
		MaxEgressConnsPerClient: 1024,
		// Room for the tunnels, probes, API clients and a thousand
		// client connections at once, whatever is imported.
		FileReserve:  1024,
		DrainTimeout: 30 * time.Second,
	}
}

// Default sets every zero field, and those of Tunnel, to its default:
// the one defaulting step, taken by whoever owns the Limits (gatewayd's
// Options.Default, or a test). NewIngress and NewEgress only validate.
func (l *Limits) Default() {
	d := DefaultLimits()
	l.Tunnel.Default()
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, d.MaxHeaderBytes)
	l.HeaderTimeout = cmp.Or(l.HeaderTimeout, d.HeaderTimeout)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, d.IdleTimeout)
	l.DialTimeout = cmp.Or(l.DialTimeout, d.DialTimeout)
	l.DialAttempts = cmp.Or(l.DialAttempts, d.DialAttempts)
	l.EndpointBackoff = cmp.Or(l.EndpointBackoff, d.EndpointBackoff)
	l.OpenTimeout = cmp.Or(l.OpenTimeout, d.OpenTimeout)
	l.AttemptTimeout = cmp.Or(l.AttemptTimeout, d.AttemptTimeout)
	l.QuietAfter = cmp.Or(l.QuietAfter, d.QuietAfter)
	l.EjectionBase = cmp.Or(l.EjectionBase, d.EjectionBase)
	l.EjectionMax = cmp.Or(l.EjectionMax, d.EjectionMax)
	l.MaxEgressConns = cmp.Or(l.MaxEgressConns, d.MaxEgressConns)
	l.MaxEgressConnsPerClient = cmp.Or(l.MaxEgressConnsPerClient, d.MaxEgressConnsPerClient)
	l.FileReserve = cmp.Or(l.FileReserve, d.FileReserve)
	l.DrainTimeout = cmp.Or(l.DrainTimeout, d.DrainTimeout)
}

// Validate rejects limits that cannot work. Every limit must be set: a
// zero is refused, never read as "unlimited" (call Default first).
func (l Limits) Validate() error {
	if err := l.Tunnel.Validate(); err != nil {
		return err
	}
	if l.MaxHeaderBytes < 64 || l.MaxHeaderBytes > 65535 {
		return fmt.Errorf("gateway limits: MaxHeaderBytes %d outside 64-65535", l.MaxHeaderBytes)
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{
		{"HeaderTimeout", l.HeaderTimeout}, {"IdleTimeout", l.IdleTimeout}, {"DialTimeout", l.DialTimeout},
		{"EndpointBackoff", l.EndpointBackoff}, {"OpenTimeout", l.OpenTimeout}, {"DrainTimeout", l.DrainTimeout},
		{"AttemptTimeout", l.AttemptTimeout}, {"QuietAfter", l.QuietAfter}, {"EjectionBase", l.EjectionBase}, {"EjectionMax", l.EjectionMax},
	} {
		if v.d <= 0 {
			return fmt.Errorf("gateway limits: %s is %v; it must be positive (Default sets every limit)", v.name, v.d)
		}
	}
	if l.AttemptTimeout > l.OpenTimeout || l.EjectionBase > l.EjectionMax {
		return fmt.Errorf("gateway limits: AttemptTimeout %v must not exceed OpenTimeout %v, nor EjectionBase %v EjectionMax %v",
			l.AttemptTimeout, l.OpenTimeout, l.EjectionBase, l.EjectionMax)
	}
	if l.DialAttempts <= 0 || l.MaxEgressConns <= 0 || l.MaxEgressConnsPerClient <= 0 || l.FileReserve <= 0 {
		return fmt.Errorf("gateway limits: DialAttempts (%d), MaxEgressConns (%d), MaxEgressConnsPerClient (%d) and FileReserve (%d) must be positive",
			l.DialAttempts, l.MaxEgressConns, l.MaxEgressConnsPerClient, l.FileReserve)
	}
	return nil
}
