package contract

import (
	"fmt"
	"strconv"
	"strings"
)

// The ports Ferry's daemons listen on in their pods (docs/contracts.md).
const (
	// IngressPort is the gateway's mTLS port: the only port other clusters
	// reach.
	IngressPort = 4143
	// GatewayAdminPort serves the gateway's /live, /ready and /metrics.
	GatewayAdminPort = 4191
	// ControllerAdminPort serves the controller's /live, /ready and /metrics.
	ControllerAdminPort = 9990
)

// ReservedPorts are the ports above: an egress port there could never be
// opened, so no egress range may contain one.
var ReservedPorts = []int32{IngressPort, GatewayAdminPort, ControllerAdminPort}

// Range is an inclusive range of egress ports.
type Range struct{ Min, Max int32 }

// DefaultEgressRange is where mirrors' egress ports are allocated, and
// DefaultClustersetRange clusterset Services': disjoint, so the two
// allocators never collide, and above every port a daemon listens on.
// Every imported service costs one port per TCP port in each range (its
// mirror, and its clusterset Service), so at 22,000 ports each the
// defaults hold 10,000 imports of two ports (docs/scale.md). Together they
// reach into Linux's ephemeral range (32768-60999), so the gateway pod
// reserves both (net.ipv4.ip_local_reserved_ports, a safe sysctl): an
// outbound connection never takes a port that an egress listener needs.
func DefaultEgressRange() Range { return Range{Min: 10000, Max: 31999} }

// DefaultClustersetRange: see DefaultEgressRange.
func DefaultClustersetRange() Range { return Range{Min: 32000, Max: 53999} }

// ReservedPortsSysctl is the value of net.ipv4.ip_local_reserved_ports
// that keeps the kernel from giving egress and clusterset ports to
// outbound sockets.
func ReservedPortsSysctl(egress, clusterset string) string { return egress + "," + clusterset }

// ParseRange parses "min-max" and validates the result.
func ParseRange(s string) (Range, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Range{}, fmt.Errorf("egress port range %q: want min-max, e.g. %s", s, DefaultEgressRange())
	}
	min, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
	max, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
	if err1 != nil || err2 != nil {
		return Range{}, fmt.Errorf("egress port range %q: want two port numbers", s)
	}
	r := Range{Min: int32(min), Max: int32(max)}
	return r, r.Validate()
}

// Validate checks that r is a non-empty range of valid, unprivileged ports
// that holds none of ReservedPorts.
func (r Range) Validate() error {
	switch {
	case r.Min < 1024:
		return fmt.Errorf("egress port range %s starts below 1024, which the non-root daemons cannot bind", r)
	case r.Max > 65535:
		return fmt.Errorf("egress port range %s ends above 65535", r)
	case r.Min > r.Max:
		return fmt.Errorf("egress port range %s: the first port is after the last", r)
	}
	for _, p := range ReservedPorts {
		if r.Contains(p) {
			return fmt.Errorf("egress port range %s contains %d, which a Ferry daemon listens on (docs/contracts.md); choose a range without %d, %d and %d",
				r, p, IngressPort, GatewayAdminPort, ControllerAdminPort)
		}
	}
	return nil
}

// Set parses s into r: a Range is a command-line flag (flag.Value).
func (r *Range) Set(s string) error {
	v, err := ParseRange(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type names the flag's value in help text (pflag.Value).
func (r *Range) Type() string { return "min-max" }

// Overlaps reports whether r and o share a port.
func (r Range) Overlaps(o Range) bool { return r.Min <= o.Max && o.Min <= r.Max }

// Contains reports whether p is in r.
func (r Range) Contains(p int32) bool { return p >= r.Min && p <= r.Max }

// Size is how many ports r holds.
func (r Range) Size() int { return int(r.Max-r.Min) + 1 }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }
