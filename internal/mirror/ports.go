package mirror

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Default egress port range (docs/contracts.md). It sits above the usual
// service ports and below Linux's default ephemeral range (32768-60999 only
// overlaps for outbound sockets, which the gateway's listeners never use).
const (
	DefaultPortMin int32 = 41000
	DefaultPortMax int32 = 48999
)

// Range is an inclusive range of egress ports.
type Range struct{ Min, Max int32 }

// DefaultRange is 41000-48999.
func DefaultRange() Range { return Range{Min: DefaultPortMin, Max: DefaultPortMax} }

// ParseRange parses "min-max".
func ParseRange(s string) (Range, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Range{}, fmt.Errorf("egress port range %q: want min-max, e.g. 41000-48999", s)
	}
	min, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
	max, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
	if err1 != nil || err2 != nil {
		return Range{}, fmt.Errorf("egress port range %q: want two port numbers", s)
	}
	r := Range{Min: int32(min), Max: int32(max)}
	return r, r.Validate()
}

// Validate checks that r is a non-empty range of valid, unprivileged ports.
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
			return fmt.Errorf("egress port range %s contains %d, which a Ferry daemon listens on (docs/contracts.md); choose a range without 4143, 4191 and 9990", r, p)
		}
	}
	return nil
}

// ReservedPorts are the ports Ferry's own daemons listen on in the gateway's
// and controller's pods (ingress, gateway admin, controller admin): an
// egress port there could never be opened.
var ReservedPorts = []int32{4143, 4191, 9990}

// Contains reports whether p is in r.
func (r Range) Contains(p int32) bool { return p >= r.Min && p <= r.Max }

// Size is how many ports r holds.
func (r Range) Size() int { return int(r.Max-r.Min) + 1 }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// PortKey names one port of one mirror: the unit of egress allocation. It is
// keyed by the exported port number, so renaming a port keeps its egress
// port and changing the number allocates a new one (the old is freed).
type PortKey struct {
	Namespace, Service string
	Port               int32
}

func (k PortKey) String() string { return fmt.Sprintf("%s/%s:%d", k.Namespace, k.Service, k.Port) }

// Less orders keys; it is also the tie-break when two holders claim the same
// port (the lesser key keeps it), so every link resolves a collision the
// same way without talking to the others.
func (k PortKey) Less(o PortKey) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	if k.Service != o.Service {
		return k.Service < o.Service
	}
	return k.Port < o.Port
}

// Allocate assigns an egress port to every key in want.
//
//   - A key keeps its current port (read back from the object's targetPort)
//     when that port is in the range, not given to another wanted key, and not
//     held by another link's key that sorts before it. That makes allocations
//     stable across restarts and range-preserving across reconciles.
//   - Other keys get the lowest port that is neither taken nor assigned, in
//     key order, so the result is deterministic.
//   - Keys that find no port are returned in exhausted.
//
// taken maps each port that other links hold to its holder. Ports not in
// want are simply not returned: that is how an unexport frees its ports.
func Allocate(r Range, taken map[int32]PortKey, current map[PortKey]int32, want []PortKey) (got map[PortKey]int32, exhausted []PortKey) {
	keys := append([]PortKey(nil), want...)
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	got = make(map[PortKey]int32, len(keys))
	assigned := make(map[int32]bool, len(keys))
	for _, k := range keys {
		p, ok := current[k]
		if !ok || !r.Contains(p) || assigned[p] {
			continue
		}
		if holder, held := taken[p]; held && !k.Less(holder) {
			continue
		}
		got[k] = p
		assigned[p] = true
	}
	next := r.Min
	for _, k := range keys {
		if _, ok := got[k]; ok {
			continue
		}
		for next <= r.Max {
			_, held := taken[next]
			if !held && !assigned[next] {
				break
			}
			next++
		}
		if next > r.Max {
			exhausted = append(exhausted, k)
			continue
		}
		got[k] = next
		assigned[next] = true
		next++
	}
	return got, exhausted
}
