package gateway

import (
	"context"
	"errors"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// Where a new egress connection goes: the route's weighted destinations,
// tier by tier, live and admitted first, failing over while nothing has been
// sent.

// open tries the route's destinations tier by tier, each tier starting
// where its picker says for turn and wrapping around in route order. The
// first pass takes the local destination and the remotes with a live
// session that the ejector admits, lowest tier first; the second takes every
// destination the first did not (a remote with no live session would only
// make the client wait for a dial that is already failing, and an ejected
// one has just failed). An attempt is bounded by AttemptTimeout while
// another destination that could serve is left. release frees what the
// connection holds.
func (e *Egress) open(r *activeRoute, turn uint64) (_ tunnel.Conn, _ Destination, release func(), _ error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.o.Limits.OpenTimeout)
	defer cancel()
	n := r.steer.n
	// Which destinations were tried (by position across the tiers): each
	// is tried once, in whichever pass first takes it, so one whose session
	// comes up between the passes is not missed by both.
	var triedBits uint64
	var triedMore []bool // beyond 64 destinations
	if n > 64 {
		triedMore = make([]bool, n)
	}
	// An attempt is bounded by AttemptTimeout only while another
	// destination that could serve (local, or with a live session, and not
	// ejected) is left to try: a slow cluster that is the only one up gets
	// all of OpenTimeout, rather than being cut for the sake of dead ones.
	plausible, now := 0, time.Now().UnixNano()
	canServe := func(di int) bool {
		d := r.Destinations[di]
		return (d.Local || e.client.Live(d.Cluster)) && !e.eject.ejected(r.health[di], now)
	}
	for ti := range r.steer.tiers {
		for _, di := range r.steer.tiers[ti].order {
			if canServe(di) {
				plausible++
			}
		}
	}
	var errs []error
	triedPlausible := 0
	for pass := range 2 {
		base := 0
		for ti := range r.steer.tiers {
			p := &r.steer.tiers[ti]
			m, k := len(p.order), p.start(turn)
			for i := range m {
				pos := base + i
				if triedMore != nil && triedMore[pos] || triedMore == nil && triedBits&(1<<pos) != 0 {
					continue
				}
				di := p.order[(k+i)%m]
				d, h := r.Destinations[di], r.health[di]
				// The ejector is asked last, and only about a destination
				// about to be tried: admitting one may claim its trial.
				if pass == 0 && n > 1 && (!d.Local && !e.client.Live(d.Cluster) || !e.eject.admit(h, d.Local, time.Now().UnixNano())) {
					continue
				}
				if triedMore != nil {
					triedMore[pos] = true
				} else {
					triedBits |= 1 << pos
				}
				if canServe(di) {
					triedPlausible++
				}
				c, release, err := e.attempt(ctx, r, d, h, n > 1 && triedPlausible < plausible)
				if err == nil {
					return c, d, release, nil
				}
				errs = append(errs, err)
				if !isRetriable(err) || ctx.Err() != nil {
					return nil, Destination{}, nil, errors.Join(errs...)
				}
			}
			base += m
		}
	}
	if len(errs) == 0 {
		return nil, Destination{}, nil, errors.New("gateway: egress: no destination takes connections")
	}
	return nil, Destination{}, nil, errors.Join(errs...)
}

// attemptError is a failed attempt that another destination may retry.
type attemptError struct{ error }

func (e attemptError) Unwrap() error { return e.error }

func isRetriable(err error) bool {
	var ae attemptError
	return errors.As(err, &ae)
}

// attempt opens one destination, bounded by AttemptTimeout when others are
// left to try, and keeps the ejections: a failure ejects (the cluster when
// its gateway failed, the destination when only the service did), a
// success ends the streak.
func (e *Egress) attempt(ctx context.Context, r *activeRoute, d Destination, h destHealth, bounded bool) (tunnel.Conn, func(), error) {
	actx := ctx
	if bounded {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, e.o.Limits.AttemptTimeout)
		defer cancel()
	}
	var done func(bool)
	if !d.Local {
		done = e.eject.waiting(h)
	}
	c, release, reason, retriable, err := e.openOne(actx, d)
	if done != nil {
		var re *tunnel.RejectError
		done(err == nil || errors.As(err, &re))
	}
	if err == nil {
		e.eject.succeeded(h)
		return c, release, nil
	}
	// Only what is the gateway's own fault ejects the whole cluster; no
	// ready endpoint, and a timeout (ingress answers only once the backend
	// accepted), may be one service's.
	wholeCluster := !d.Local && reason != tunnel.StatusUnavailable.String()
	// The stream's own deadline, set from actx's, can fire before actx's
	// timer does: ask the clock, not actx.Err.
	if dl, ok := actx.Deadline(); bounded && ok && !time.Now().Before(dl) && ctx.Err() == nil {
		reason, retriable, wholeCluster = ReasonAttemptTimeout, true, false
	}
	e.o.Metrics.EgressFailed.WithLabelValues(d.Cluster, reason).Inc()
	if r.Clusterset {
		e.o.Metrics.ClustersetFailures.WithLabelValues(d.Target.Export(), d.Cluster, reason).Inc()
	}
	if !retriable || ctx.Err() != nil {
		e.log.Info("egress stream failed", "remote", d.Cluster, "local", d.Local, "export", d.Target.Export(), "reason", reason, "err", err)
		return nil, nil, err
	}
	for_, started := e.eject.failed(h, d, wholeCluster)
	if started && r.Clusterset {
		e.o.Metrics.ClustersetEjections.WithLabelValues(d.Target.Export(), d.Cluster).Inc()
	}
	e.log.Info("egress attempt failed; its destination is ejected", "remote", d.Cluster, "local", d.Local,
		"export", d.Target.Export(), "reason", reason, "err", err, "ejected_for", for_.Round(time.Millisecond), "whole_cluster", wholeCluster)
	return nil, nil, attemptError{err}
}

// openOne connects to one destination: a tunnel stream to a remote, or a
// local endpoint. A local failure (no ready endpoint, or none accepted) is
// retriable: nothing was sent, and the other clusters may serve.
func (e *Egress) openOne(ctx context.Context, d Destination) (c tunnel.Conn, release func(), reason string, retriable bool, err error) {
	if d.Local {
		conn, addr, reason, err := e.local.dial(ctx, d.Target)
		if err != nil {
			return nil, nil, reason, true, err
		}
		return asConn(conn), func() { e.local.release(addr) }, "", false, nil
	}
	st, err := e.client.Open(ctx, d.Cluster, d.Target)
	if err != nil {
		reason, retriable := egressReason(err)
		return nil, nil, reason, retriable, err
	}
	return st, func() {}, "", false, nil
}

func egressReason(err error) (string, bool) {
	var re *tunnel.RejectError
	switch {
	case errors.As(err, &re):
		return re.Status.String(), re.Retriable()
	case errors.Is(err, tunnel.ErrUnknownRemote):
		return ReasonUnknownRemote, true
	case errors.Is(err, tunnel.ErrPoolExhausted):
		return ReasonPoolExhausted, true
	}
	return ReasonUnreachable, true
}
