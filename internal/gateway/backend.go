package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// backends connects to a target's ready local endpoints: ingress does it for
// streams from other clusters, and egress for the local destination of a
// clusterset route, the same way (a balancer over the ready endpoints, a
// bounded connect, up to DialAttempts distinct endpoints, and a backoff on
// an endpoint that refused).
type backends struct {
	endpoints EndpointPicker
	dialer    Dialer
	bal       *balancer
	limits    *Limits
}

func newBackends(endpoints EndpointPicker, dialer Dialer, now func() time.Time, limits *Limits) *backends {
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	return &backends{endpoints: endpoints, dialer: dialer, bal: newBalancer(now, limits.EndpointBackoff), limits: limits}
}

// dial connects to a ready endpoint of t, trying up to DialAttempts
// distinct ones. The returned endpoint holds a balancer slot until
// released; reason is a failure's metric label.
func (b *backends) dial(ctx context.Context, t tunnel.Target) (c net.Conn, addr, reason string, err error) {
	addrs := b.addrs(t)
	if len(addrs) == 0 {
		return nil, "", ReasonNoEndpoints, errors.New("no ready endpoints")
	}
	var tried []string
	var errs []error
	for len(tried) < b.limits.DialAttempts {
		addr, ok := b.bal.pick(addrs, tried)
		if !ok {
			break
		}
		tried = append(tried, addr)
		b.bal.acquire(addr)
		dctx, cancel := context.WithTimeout(ctx, b.limits.DialTimeout)
		c, err := b.dialer.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c, addr, "", nil
		}
		b.bal.release(addr)
		b.bal.markFailed(addr)
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", ReasonDialFailed, fmt.Errorf("%d endpoint(s) tried: %w", len(tried), errors.Join(errs...))
}

// addrs are the endpoints t may reach. A target that names a hostname gets
// that pod's addresses or none: when the pod is not ready the stream fails
// as unavailable, and never goes to another pod, which for a StatefulSet
// would be another member with other data.
func (b *backends) addrs(t tunnel.Target) []string {
	if t.Hostname != "" {
		return b.endpoints.HostEndpoints(t.Namespace, t.Service, t.Hostname, t.Port)
	}
	return b.endpoints.Endpoints(t.Namespace, t.Service, t.Port)
}

// release frees the balancer slot dial took for addr.
func (b *backends) release(addr string) { b.bal.release(addr) }
