package claims

import (
	"sync"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

func newSnapshot() Snapshot {
	return Snapshot{Table: Table{}, Broken: map[int32]error{}, shards: map[int32]*corev1.ConfigMap{}, byService: &serviceIndex{}}
}

// serviceKey names the Services one owner claims ports for.
type serviceKey struct {
	owner              Owner
	namespace, service string
}

// serviceIndex is a Snapshot's claims by Service, and the owners that
// hold any, built once.
type serviceIndex struct {
	once   sync.Once
	ports  map[serviceKey][]int32
	owners map[Owner]bool
}

func (s Snapshot) index() *serviceIndex {
	build := func(x *serviceIndex) {
		x.ports, x.owners = map[serviceKey][]int32{}, map[Owner]bool{}
		for p, c := range s.Table {
			k := serviceKey{c.Owner, c.Namespace, c.Service}
			x.ports[k] = append(x.ports[k], p)
			x.owners[c.Owner] = true
		}
	}
	if s.byService == nil {
		x := &serviceIndex{}
		build(x)
		return x
	}
	s.byService.once.Do(func() { build(s.byService) })
	return s.byService
}

// HasOwner reports whether owner holds any claim.
func (s Snapshot) HasOwner(owner Owner) bool { return s.index().owners[owner] }

// View is Split for a pass that recomputes only some of owner's Services
// (inScope says which, by namespace and name): mine holds owner's claims on
// those Services alone, and taken is every other claim, owner's outside
// the scope included, so that they stay held. Neither copies the record:
// mine comes from an index the Snapshot builds once, and taken looks the
// record up as it is asked, so a scoped pass costs O(its Services).
func (s Snapshot) View(owner Owner, services []ServiceName, inScope func(namespace, service string) bool) (taken mirror.Taken, mine map[mirror.PortKey]int32) {
	idx := s.index().ports
	mine = map[mirror.PortKey]int32{}
	for _, n := range services {
		for _, p := range idx[serviceKey{owner, n.Namespace, n.Name}] {
			c := s.Table[p]
			mine[mirror.PortKey{Namespace: c.Namespace, Service: c.Service, Port: c.Port}] = p
		}
	}
	return scopedTaken{s: s, owner: owner, inScope: inScope}, mine
}

// ServiceName is a Service's namespace and name.
type ServiceName struct{ Namespace, Name string }

// scopedTaken is View's taken.
type scopedTaken struct {
	s       Snapshot
	owner   Owner
	inScope func(namespace, service string) bool
}

func (t scopedTaken) Holder(port int32) (mirror.PortKey, bool) {
	if _, broken := t.s.Broken[contract.PortClaimsShardOf(port)]; broken {
		return mirror.PortKey{}, true
	}
	c, ok := t.s.Table[port]
	if !ok || (c.Owner == t.owner && t.inScope(c.Namespace, c.Service)) {
		return mirror.PortKey{}, false
	}
	return mirror.PortKey{Namespace: c.Namespace, Service: c.Service, Port: c.Port}, true
}
