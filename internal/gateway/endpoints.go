package gateway

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// EndpointPicker lists the ready endpoints ("ip:port") of one port of a local
// Service. The wiring implements it from EndpointSlices of the gateway's own
// cluster (never DNS), resolving the Service port to each endpoint's target
// port. It is called once per stream, so it must be cheap and must not
// block; a change is visible to the next stream.
//
// HostEndpoints is the same for the one pod of a headless Service whose
// EndpointSlice hostname is hostname (a target with a Hostname): only that
// pod's addresses, or none. It is a method of its own, not a filter the
// caller applies to Endpoints, so that no implementation can answer a
// hostname with the whole Service by overlooking it.
type EndpointPicker interface {
	Endpoints(namespace, service string, port int) []string
	HostEndpoints(namespace, service, hostname string, port int) []string
}

// EndpointTable is a concurrency-safe EndpointPicker that the wiring (or a
// test) fills with Set.
type EndpointTable struct {
	m atomic.Pointer[map[endpointKey][]string]
	w sync.Mutex // serializes writers; readers never lock
}

type endpointKey struct {
	ns, svc string
	port    int
	// host is empty for the Service's endpoints, and a hostname for one
	// pod's (SetHost).
	host string
}

// NewEndpointTable returns an empty table.
func NewEndpointTable() *EndpointTable {
	t := &EndpointTable{}
	t.m.Store(&map[endpointKey][]string{})
	return t
}

// Set replaces the ready endpoints of one Service port; an empty list
// removes it.
func (t *EndpointTable) Set(namespace, service string, port int, ready []string) {
	t.set(endpointKey{namespace, service, port, ""}, ready)
}

// SetHost replaces the ready endpoints of the pod named hostname behind one
// Service port; an empty list removes them. They are independent of Set's:
// a test that wants the pod among the Service's endpoints lists it there
// too.
func (t *EndpointTable) SetHost(namespace, service, hostname string, port int, ready []string) {
	if hostname == "" {
		return // the Service's own entry is Set's
	}
	t.set(endpointKey{namespace, service, port, hostname}, ready)
}

func (t *EndpointTable) set(k endpointKey, ready []string) {
	t.w.Lock()
	defer t.w.Unlock()
	old := *t.m.Load()
	m := make(map[endpointKey][]string, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if len(ready) == 0 {
		delete(m, k)
	} else {
		m[k] = slices.Clone(ready)
	}
	t.m.Store(&m)
}

// Endpoints implements EndpointPicker. The slice must not be modified.
func (t *EndpointTable) Endpoints(namespace, service string, port int) []string {
	return (*t.m.Load())[endpointKey{namespace, service, port, ""}]
}

// HostEndpoints implements EndpointPicker. The slice must not be modified.
func (t *EndpointTable) HostEndpoints(namespace, service, hostname string, port int) []string {
	if hostname == "" {
		return nil // never the Service's endpoints for a pod's
	}
	return (*t.m.Load())[endpointKey{namespace, service, port, hostname}]
}

// balancer spreads streams over endpoints by the power of two choices on
// in-flight connections (tunnelled TCP connections are long-lived, so round
// robin would pile up on whichever backend is slowest to finish), and skips
// endpoints whose connect failed recently.
type balancer struct {
	now     func() time.Time
	backoff time.Duration

	mu     sync.Mutex
	active map[string]int       // in-flight connections per endpoint
	failed map[string]time.Time // endpoint → skip until
}

func newBalancer(now func() time.Time, backoff time.Duration) *balancer {
	return &balancer{now: now, backoff: backoff, active: map[string]int{}, failed: map[string]time.Time{}}
}

// pick chooses an endpoint not in tried. Endpoints in backoff are used only
// when nothing else is left: a stale failure must not make a Service with
// one endpoint unreachable.
func (b *balancer) pick(addrs []string, tried []string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var fresh, backedOff []string
	for _, a := range addrs {
		if slices.Contains(tried, a) {
			continue
		}
		if until, ok := b.failed[a]; ok {
			if now.Before(until) {
				backedOff = append(backedOff, a)
				continue
			}
			delete(b.failed, a)
		}
		fresh = append(fresh, a)
	}
	cands := fresh
	if len(cands) == 0 {
		cands = backedOff
	}
	switch len(cands) {
	case 0:
		return "", false
	case 1:
		return cands[0], true
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	if b.active[cands[j]] < b.active[cands[i]] {
		i = j
	}
	return cands[i], true
}

func (b *balancer) acquire(addr string) {
	b.mu.Lock()
	b.active[addr]++
	b.mu.Unlock()
}

func (b *balancer) release(addr string) {
	b.mu.Lock()
	if b.active[addr]--; b.active[addr] <= 0 {
		delete(b.active, addr) // keep the map as small as the live set
	}
	b.mu.Unlock()
}

func (b *balancer) markFailed(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Entries expire lazily in pick; prune here too so endpoints that
	// vanished from every Service cannot accumulate.
	if len(b.failed) > 4096 {
		now := b.now()
		for a, until := range b.failed {
			if now.After(until) {
				delete(b.failed, a)
			}
		}
	}
	b.failed[addr] = b.now().Add(b.backoff)
}
