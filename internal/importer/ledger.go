package importer

import (
	"sync"

	"ferry.dev/ferry/internal/mirror"
)

// portLedger keeps egress allocations from colliding across Links that
// reconcile concurrently in this process. The port claims are the
// allocator's memory, and their resourceVersion guard what makes a
// collision impossible; the ledger only spares the conflict (and a retry)
// in the gap between one Link choosing a port and the cache showing its
// claim. Each Link's reservation is
// replaced by the ports of its latest desired state, so ports it stops
// using are freed at its next reconcile, and released with the Link.
type portLedger struct {
	mu       sync.Mutex
	reserved map[string]map[int32]mirror.PortKey
}

func newPortLedger() *portLedger {
	return &portLedger{reserved: map[string]map[int32]mirror.PortKey{}}
}

// desired computes link's desired state with every port held by another
// Link (claimed, fromCache, or reserved here) taken, and reserves the
// ports it uses, atomically with respect to other Links. inScope is nil for
// a full pass, whose ports replace the Link's reservation; a scoped pass
// replaces only the reservations of the keys inScope accepts.
func (l *portLedger) desired(link string, in mirror.Input, fromCache map[int32]mirror.PortKey, inScope func(mirror.PortKey) bool) mirror.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	taken := fromCache
	if taken == nil {
		taken = map[int32]mirror.PortKey{}
	}
	claimedByMe := make(map[int32]bool, len(in.Claimed))
	for _, p := range in.Claimed {
		claimedByMe[p] = true
	}
	for other, ports := range l.reserved {
		if other == link {
			continue
		}
		for p, k := range ports {
			// The record decides who holds a claimed port; a reservation
			// made from an older view never displaces it.
			if _, claimed := taken[p]; claimed || claimedByMe[p] {
				continue
			}
			taken[p] = k
		}
	}
	in.Taken = taken
	st := mirror.Desired(in)
	mine := make(map[int32]mirror.PortKey, len(st.Ports))
	if inScope != nil {
		for p, k := range l.reserved[link] {
			if !inScope(k) {
				mine[p] = k
			}
		}
	}
	for k, p := range st.Ports {
		mine[p] = k
	}
	l.reserved[link] = mine
	return st
}

func (l *portLedger) release(link string) {
	l.mu.Lock()
	delete(l.reserved, link)
	l.mu.Unlock()
}
