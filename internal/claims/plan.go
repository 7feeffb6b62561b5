package claims

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

// Split reads the record from one owner's side: taken maps every port held
// by someone else to its holder, and mine is the owner's own claims. Ports
// in a shard that does not decode are held by nobody usable: the zero
// PortKey, which sorts before every real key.
func Split(s Snapshot, owner Owner) (taken mirror.TakenMap, mine map[mirror.PortKey]int32) {
	taken = mirror.TakenMap{}
	mine = map[mirror.PortKey]int32{}
	for p, c := range s.Table {
		k := mirror.PortKey{Namespace: c.Namespace, Service: c.Service, Port: c.Port}
		if c.Owner == owner {
			mine[k] = p
			continue
		}
		taken[p] = k
	}
	for first := range s.Broken {
		for p := first; p < first+contract.PortClaimsShard; p++ {
			taken[p] = mirror.PortKey{}
		}
	}
	return taken, mine
}

// Plan is what an owner's desired state asks of the record: claim every
// port it assigns (want), and release a claim it no longer wants only once
// no Service at the claimed name still carries that port to that egress
// port (gone reports that). A port is thus never handed to a new holder
// while an old object that clients still reach through it exists. pending
// counts the claims kept only because their holder is not gone yet.
func Plan(owner Owner, want, mine map[mirror.PortKey]int32, gone func(k mirror.PortKey, egress int32) bool) (ch Change, pending int) {
	ch.Set = make(map[int32]Claim, len(want))
	for k, p := range want {
		ch.Set[p] = Claim{Owner: owner, Namespace: k.Namespace, Service: k.Service, Port: k.Port}
	}
	for k, p := range mine {
		if q, ok := want[k]; ok && q == p {
			continue
		}
		if !gone(k, p) {
			pending++
			continue
		}
		ch.Release = append(ch.Release, p)
	}
	return ch, pending
}

// Gone answers Plan's question from a Service read at the claimed name (nil
// when there is none, or when the read failed with err): a port is gone
// when no Service carries it to that egress port. A read error other than
// NotFound counts as not gone: a port is never freed on a guess.
func Gone(svc *corev1.Service, err error, k mirror.PortKey, egress int32) bool {
	if err != nil {
		return apierrors.IsNotFound(err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == k.Port && p.TargetPort.IntVal == egress && p.TargetPort.StrVal == "" {
			return false
		}
	}
	return true
}

// Vouches reports whether every port of svc is claimed for it by owner:
// only then is a Service that looks like Ferry's taken for one.
func (t Table) Vouches(svc *corev1.Service, owner Owner) bool {
	if len(svc.Spec.Ports) == 0 {
		return false
	}
	for _, p := range svc.Spec.Ports {
		c := Claim{Owner: owner, Namespace: svc.Namespace, Service: svc.Name, Port: p.Port}
		if p.TargetPort.StrVal != "" || !t.Holds(p.TargetPort.IntVal, c) {
			return false
		}
	}
	return true
}
