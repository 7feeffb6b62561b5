package tunnel

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"ferry.dev/ferry/internal/identity"
)

// Live connections are verified once, at their handshake; what follows keeps
// them honest afterwards (finding 6 of docs/security.md). Every tunnel
// session and feed connection, on both sides, runs a guard that
//
//   - re-verifies the peer's chain with the current bundle whenever the
//     bundle changes (identity.Source swaps its pointer; the guard compares
//     it every TrustCheckInterval), and closes the connection at once if the
//     chain no longer verifies: a dropped root or a revoked issuer reaches
//     live connections within TrustCheckInterval;
//   - retires it gracefully once this side's own certificate is renewed, so
//     that live connections move to the new certificate on their own. A
//     connection made with a leaf of the old root would otherwise outlive
//     a trust rotation and be cut when its peer drops that root (scenario
//     S4 of docs/reliability.md), and one made before a routine renewal
//     would be cut when the old leaf expires;
//   - closes the connection at the peer's NotAfter at the latest (the
//     earliest NotAfter of its chain), retiring it gracefully
//     MaxConnectionAgeGrace before;
//   - retires it gracefully at MaxConnectionAge, drawn per connection from
//     its last tenth so that a fleet that connected together does not
//     reconnect together, and closes it MaxConnectionAgeGrace later.

// TrustSource is the current trust of a live connection's side: the bundle,
// whose pointer changes when trust does, a verifier that uses it, and the
// certificate this side presents. identity.Source satisfies it.
type TrustSource interface {
	Bundle() *identity.Bundle
	Verifier(role identity.Role) identity.Verifier
	Certificate() *tls.Certificate
}

// Lifetime bounds how long a live connection is trusted without a new
// handshake. It is part of Limits, and the feed client takes it too.
type Lifetime struct {
	// MaxConnectionAge: a connection is retired (no new streams; closed once
	// idle) after a random age between 0.9 and 1 times this.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace: a retired connection is closed this long after
	// it was retired, whatever still runs on it. A connection is also
	// retired this long before its peer's certificate expires.
	MaxConnectionAgeGrace time.Duration
	// TrustCheckInterval is how often a live connection looks for a new
	// trust bundle; a peer that stops verifying is closed within it.
	TrustCheckInterval time.Duration
}

// DefaultLifetime is what Limits.Default and the feed client use.
func DefaultLifetime() Lifetime {
	return Lifetime{
		MaxConnectionAge:      time.Hour,
		MaxConnectionAgeGrace: 15 * time.Minute,
		TrustCheckInterval:    5 * time.Second,
	}
}

// Reasons a guard ends a live connection; the server counts them as
// rejections.
const (
	// ReasonPeerUntrusted: the peer's chain no longer verifies against the
	// current bundle (a root dropped, an issuer revoked).
	ReasonPeerUntrusted = "peer_untrusted"
	// ReasonPeerExpired: the peer's certificate expired on a live connection.
	ReasonPeerExpired = "peer_certificate_expired"
	// reasonRenewed: this side's certificate was renewed; the connection
	// is retired, not cut, and counts as no rejection.
	reasonRenewed = "own_certificate_renewed"
	// reasonAge: MaxConnectionAgeGrace ran out after retirement. Not a
	// rejection: logged only.
	reasonAge = "max_connection_age"
)

// guard keeps one live connection honest; see the comment at the top.
type guard struct {
	lt    Lifetime
	trust TrustSource
	role  identity.Role // what the peer is to us
	chain []*x509.Certificate
	// own is the certificate this side had before the handshake: the one
	// it presented, or an older one (which only retires the connection
	// once more than needed). Nil: the one current when the guard starts.
	own *tls.Certificate
	// retire stops new streams and closes the connection once idle; cut
	// closes it now. done is closed when the connection is gone.
	retire func()
	cut    func(reason string)
	done   <-chan struct{}
	log    *slog.Logger
}

// run returns when the connection is gone, or after cutting it.
func (g guard) run() {
	now := time.Now()
	age := g.lt.MaxConnectionAge - time.Duration(rand.Int64N(int64(g.lt.MaxConnectionAge)/10+1))
	retireAt, cutAt, cutReason := schedule(now, age, g.lt.MaxConnectionAgeGrace, chainNotAfter(g.chain))
	retireT, cutT := time.NewTimer(time.Until(retireAt)), time.NewTimer(time.Until(cutAt))
	defer retireT.Stop()
	defer cutT.Stop()
	tick := time.NewTicker(g.lt.TrustCheckInterval)
	defer tick.Stop()
	// nil, not the current bundle: the handshake may have verified against
	// one that was swapped out before this guard started.
	var checked *identity.Bundle
	own, renewed := g.own, false
	if own == nil {
		own = g.trust.Certificate()
	}
	for {
		select {
		case <-g.done:
			return
		case <-tick.C:
			if cur := g.trust.Certificate(); !renewed && !sameLeaf(own, cur) {
				renewed = true
				g.log.Info("retiring connection", "reason", reasonRenewed)
				g.retire()
			}
			b := g.trust.Bundle()
			if b == checked {
				continue
			}
			checked = b
			if _, err := g.trust.Verifier(g.role).Verify(g.chain); err != nil {
				g.log.Warn("closing connection: peer no longer verifies", "err", err)
				g.cut(ReasonPeerUntrusted)
				return
			}
		case <-retireT.C:
			g.log.Debug("retiring connection", "age", time.Since(now).Round(time.Second), "close_by", cutAt)
			g.retire()
		case <-cutT.C:
			g.log.Info("closing connection", "reason", cutReason)
			g.cut(cutReason)
			return
		}
	}
}

// schedule says when a connection made at now is retired and when it is
// cut, and why: at age, cut grace later, unless the peer's chain expires
// first (exp; zero if unknown), in which case it is retired grace before exp
// and cut at exp. A connection made less than grace before exp is not
// retired early: its replacement would present the same certificate unless
// the peer renewed it, and retiring at once would redial in a loop.
func schedule(now time.Time, age, grace time.Duration, exp time.Time) (retireAt, cutAt time.Time, reason string) {
	retireAt = now.Add(age)
	if early := exp.Add(-grace); !exp.IsZero() && early.After(now) && early.Before(retireAt) {
		retireAt = early
	}
	cutAt, reason = retireAt.Add(grace), reasonAge
	if !exp.IsZero() && !exp.After(cutAt) {
		cutAt, reason = exp, ReasonPeerExpired
	}
	return retireAt, cutAt, reason
}

// sameLeaf says whether a and b present the same leaf. The loader may hand
// over a new *tls.Certificate for an unchanged Secret, so pointers are not
// compared; nil (not loaded yet) is the same as nil only.
func sameLeaf(a, b *tls.Certificate) bool {
	if a == nil || b == nil || len(a.Certificate) == 0 || len(b.Certificate) == 0 {
		return a == b
	}
	return a == b || bytes.Equal(a.Certificate[0], b.Certificate[0])
}

// chainNotAfter is the earliest NotAfter in chain: the chain stops verifying
// then. Zero for an empty chain.
func chainNotAfter(chain []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range chain {
		if c != nil && (t.IsZero() || c.NotAfter.Before(t)) {
			t = c.NotAfter
		}
	}
	return t
}

// Default sets every zero field to its default.
func (l *Lifetime) Default() {
	d := DefaultLifetime()
	l.MaxConnectionAge = cmp.Or(l.MaxConnectionAge, d.MaxConnectionAge)
	l.MaxConnectionAgeGrace = cmp.Or(l.MaxConnectionAgeGrace, d.MaxConnectionAgeGrace)
	l.TrustCheckInterval = cmp.Or(l.TrustCheckInterval, d.TrustCheckInterval)
}

// Validate refuses a zero or negative field: none means "forever".
func (l Lifetime) Validate() error {
	for name, v := range map[string]time.Duration{
		"MaxConnectionAge": l.MaxConnectionAge, "MaxConnectionAgeGrace": l.MaxConnectionAgeGrace,
		"TrustCheckInterval": l.TrustCheckInterval,
	} {
		if v <= 0 {
			return fmt.Errorf("tunnel lifetime: %s is %v; it must be positive (Default sets it)", name, v)
		}
	}
	return nil
}

// Guard keeps a connection that carries no tunnel streams honest, such as
// the feed client's: it runs until done is closed, and calls closeConn when
// the peer (in role, as seen from this side) stops verifying against
// trust's current bundle, when the peer's chain expires, and at a random age
// in the last tenth of lt.MaxConnectionAge. A connection that resumes
// elsewhere, like the feed, loses nothing by being closed rather than
// drained.
func Guard(lt Lifetime, trust TrustSource, role identity.Role, chain []*x509.Certificate, closeConn func(), done <-chan struct{}, log *slog.Logger) {
	guard{
		lt: lt, trust: trust, role: role, chain: chain,
		retire: closeConn, cut: func(string) { closeConn() },
		done: done, log: log,
	}.run()
}
