package mirror

import (
	"fmt"
	"sort"

	"ferry.dev/ferry/internal/contract"
)

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

// Taken says which egress ports are held, and by whom: the ports other
// holders claim (and, in a scoped pass, the holder's own claims outside
// the pass). A scoped pass must not copy every claim to allocate a port or
// two, so it is an interface: TakenMap for a map, claims.Snapshot's view
// for the record itself.
type Taken interface {
	Holder(port int32) (PortKey, bool)
}

// TakenMap is a Taken held in a map.
type TakenMap map[int32]PortKey

// Holder returns who holds port.
func (m TakenMap) Holder(port int32) (PortKey, bool) {
	k, ok := m[port]
	return k, ok
}

// holder is t.Holder, with a nil t holding nothing.
func holder(t Taken, port int32) (PortKey, bool) {
	if t == nil {
		return PortKey{}, false
	}
	return t.Holder(port)
}

// overlay is base with more holders on top: what HeldUntilGone adds.
type overlay struct {
	base  Taken
	extra map[int32]PortKey
}

func (o overlay) Holder(port int32) (PortKey, bool) {
	if k, ok := o.extra[port]; ok {
		return k, true
	}
	return holder(o.base, port)
}

// HeldUntilGone adds to taken (which it never modifies) the ports that
// existing objects hold for keys no longer wanted: an unexported mirror, a
// port number that changed, or a forged object that carries the ownership
// labels and is being deleted. A port is reused only once the object that
// holds it is gone. Handing it out earlier would send the new holder's
// clients to the old target for as long as the old object lingers, which a
// finalizer makes forever. The result costs O(what it adds), not a copy of
// taken.
func HeldUntilGone(taken Taken, current map[PortKey]int32, want []PortKey) Taken {
	wanted := make(map[PortKey]bool, len(want))
	for _, k := range want {
		wanted[k] = true
	}
	var extra map[int32]PortKey
	for k, p := range current {
		if wanted[k] {
			continue
		}
		h, ok := extra[p]
		if !ok {
			h, ok = holder(taken, p)
		}
		if !ok || k.Less(h) {
			if extra == nil {
				extra = map[int32]PortKey{}
			}
			extra[p] = k
		}
	}
	if extra == nil {
		return taken
	}
	return overlay{base: taken, extra: extra}
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
func Allocate(r contract.Range, taken Taken, current map[PortKey]int32, want []PortKey) (got map[PortKey]int32, exhausted []PortKey) {
	keys := append([]PortKey(nil), want...)
	sort.Slice(keys, func(i, j int) bool { return keys[i].Less(keys[j]) })
	got = make(map[PortKey]int32, len(keys))
	assigned := make(map[int32]bool, len(keys))
	for _, k := range keys {
		p, ok := current[k]
		if !ok || !r.Contains(p) || assigned[p] {
			continue
		}
		if h, held := holder(taken, p); held && !k.Less(h) {
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
			_, held := holder(taken, next)
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
