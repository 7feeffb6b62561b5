package gateway

import (
	"context"
	"errors"

	"ferry.dev/ferry/internal/tunnel"
)

// Where a new egress connection goes: the route's weighted destinations,
// live first, failing over while nothing has been sent.

// open tries the route's destinations that take connections, starting
// where the picker says for turn and wrapping around in route order: first
// the local destination and those with a live session, then the rest (a
// remote with no live session would only make the client wait for a dial
// that is already failing). release frees what the connection holds.
func (e *Egress) open(r *activeRoute, turn uint64) (_ tunnel.Conn, _ Destination, release func(), _ error) {
	ctx, cancel := context.WithTimeout(e.ctx, e.o.Limits.OpenTimeout)
	defer cancel()
	order := r.pick.order
	n, k := len(order), r.pick.start(turn)
	// Liveness is read once: a session that comes up between the passes
	// must not make its destination miss both.
	var liveBits uint64
	var liveMore []bool // beyond 64 destinations
	if n > 64 {
		liveMore = make([]bool, n)
	}
	for i := range n {
		d := r.Destinations[order[(k+i)%n]]
		live := n == 1 || d.Local || e.client.Live(d.Cluster)
		switch {
		case liveMore != nil:
			liveMore[i] = live
		case live:
			liveBits |= 1 << i
		}
	}
	var errs []error
	for pass := range 2 {
		for i := range n {
			d := r.Destinations[order[(k+i)%n]]
			live := liveBits&(1<<i) != 0
			if liveMore != nil {
				live = liveMore[i]
			}
			if live != (pass == 0) {
				continue
			}
			c, release, reason, retriable, err := e.openOne(ctx, d)
			if err == nil {
				return c, d, release, nil
			}
			e.o.Metrics.EgressFailed.WithLabelValues(d.Cluster, reason).Inc()
			e.log.Info("egress stream failed", "remote", d.Cluster, "local", d.Local, "export", d.Target.Export(), "reason", reason, "err", err)
			errs = append(errs, err)
			if !retriable || ctx.Err() != nil {
				return nil, Destination{}, nil, errors.Join(errs...)
			}
		}
	}
	if len(errs) == 0 {
		return nil, Destination{}, nil, errors.New("gateway: egress: no destination takes connections")
	}
	return nil, Destination{}, nil, errors.Join(errs...)
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
