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
// claim. Each Link's reservation is replaced by the ports of its latest
// desired state, so ports it stops using are freed at its next reconcile,
// and released with the Link.
type portLedger struct {
	mu       sync.Mutex
	reserved map[string]*reservation
}

// reservation is one Link's ports, with an index by Service ("ns/name")
// so that a scoped pass replaces its own Services' ports in O(scope).
type reservation struct {
	ports  map[int32]mirror.PortKey
	byName map[string][]int32
}

func newReservation() *reservation {
	return &reservation{ports: map[int32]mirror.PortKey{}, byName: map[string][]int32{}}
}

func (r *reservation) drop(name string) {
	for _, p := range r.byName[name] {
		delete(r.ports, p)
	}
	delete(r.byName, name)
}

func (r *reservation) add(k mirror.PortKey, p int32) {
	r.ports[p] = k
	n := k.Namespace + "/" + k.Service
	r.byName[n] = append(r.byName[n], p)
}

func newPortLedger() *portLedger {
	return &portLedger{reserved: map[string]*reservation{}}
}

// desired computes link's desired state with every port held by another
// Link (in taken, or reserved here) taken, and reserves the ports it uses,
// atomically with respect to other Links. scope is nil for a full pass,
// whose ports replace the Link's reservation; a scoped pass names the
// Services ("ns/name") it recomputes and replaces only their ports.
func (l *portLedger) desired(link string, in mirror.Input, taken mirror.Taken, scope map[string]bool) mirror.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := ledgerView{taken: taken, mine: make(map[int32]bool, len(in.Claimed))}
	for _, p := range in.Claimed {
		v.mine[p] = true
	}
	for other, r := range l.reserved {
		if other != link {
			v.others = append(v.others, r.ports)
		}
	}
	if scope != nil {
		// The Link's own reservations outside the scope are as taken as
		// its claims there, which the cache may not show yet.
		v.own, v.scope = l.reserved[link], scope
	}
	in.Taken = v
	st := mirror.Desired(in)
	r := l.reserved[link]
	if r == nil || scope == nil {
		r = newReservation()
		l.reserved[link] = r
	}
	for name := range scope {
		r.drop(name)
	}
	for k := range st.Ports {
		if n := k.Namespace + "/" + k.Service; !scope[n] {
			r.drop(n) // a Service the scope did not name: replace, never duplicate
		}
	}
	for k, p := range st.Ports {
		r.add(k, p)
	}
	return st
}

// ledgerView is what a Link's pass sees as taken: the record first (the
// record decides who holds a claimed port, and a reservation made from an
// older view never displaces it, nor one of the Link's own claims), then
// other Links' reservations, then, in a scoped pass, the Link's own
// outside the scope. It is looked up as it is asked, under the
// ledger's lock: nothing is copied.
type ledgerView struct {
	taken  mirror.Taken
	mine   map[int32]bool
	others []map[int32]mirror.PortKey
	// own and scope: in a scoped pass, the Link's reservations of
	// Services outside scope.
	own   *reservation
	scope map[string]bool
}

func (v ledgerView) Holder(p int32) (mirror.PortKey, bool) {
	if v.taken != nil {
		if k, ok := v.taken.Holder(p); ok {
			return k, true
		}
	}
	if v.mine[p] {
		return mirror.PortKey{}, false
	}
	for _, o := range v.others {
		if k, ok := o[p]; ok {
			return k, true
		}
	}
	if v.own != nil {
		if k, ok := v.own.ports[p]; ok && !v.scope[k.Namespace+"/"+k.Service] {
			return k, true
		}
	}
	return mirror.PortKey{}, false
}

func (l *portLedger) release(link string) {
	l.mu.Lock()
	delete(l.reserved, link)
	l.mu.Unlock()
}
