package claims

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
)

// ErrConflict means a shard changed since it was read: read again and
// decide again.
var ErrConflict = errors.New("port claims changed since they were read")

// Snapshot is the record as one read saw it.
type Snapshot struct {
	// Table holds every claim of every shard that decoded.
	Table Table
	// Broken are the shards that did not decode, by first port. Their
	// ports count as held by someone unknown: never allocated, never routed.
	Broken map[int32]error
	shards map[int32]*corev1.ConfigMap
	// byService indexes Table by (owner, namespace, service), built on
	// first use (see View). Nil in a Snapshot built by hand.
	byService *serviceIndex
}

// Read loads every claims ConfigMap in namespace from r (a cache, normally).
func Read(ctx context.Context, r client.Reader, namespace string) (Snapshot, error) {
	var list corev1.ConfigMapList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.HasLabels{contract.LabelPortClaims},
		client.UnsafeDisableDeepCopy); err != nil {
		return Snapshot{}, fmt.Errorf("list port claims: %w", err)
	}
	return FromConfigMaps(pointers(list.Items)), nil
}

// FromConfigMaps decodes claims ConfigMaps. A ConfigMap whose name is not a
// shard's is ignored: nothing but the controller writes the namespace, and
// reading it as a shard could not be right.
func FromConfigMaps(cms []*corev1.ConfigMap) Snapshot {
	s := newSnapshot()
	for _, cm := range cms {
		first, ok := shardOf(cm.Name)
		if !ok {
			continue
		}
		s.shards[first] = cm
		claims, err := Decode(first, cm.Data[contract.PortClaimsKey])
		if err != nil {
			s.Broken[first] = err
			continue
		}
		maps.Copy(s.Table, claims)
	}
	return s
}

func shardOf(name string) (int32, bool) {
	var first int32
	if _, err := fmt.Sscanf(name, "ferry-ports-%d", &first); err != nil || first < 0 || first > 65535 {
		return 0, false
	}
	return first, contract.PortClaimsName(first) == name && contract.PortClaimsShardOf(first) == first
}

// Unusable reports whether egress lies in a shard that did not decode.
func (s Snapshot) Unusable(egress int32) bool {
	_, broken := s.Broken[contract.PortClaimsShardOf(egress)]
	return broken
}

// Change is what one writer wants of the record: ports to claim (or to
// claim again, unchanged) and ports to release.
type Change struct {
	Set     map[int32]Claim
	Release []int32
}

// Empty reports whether the change writes nothing against s.
func (c Change) Empty(s Snapshot) bool {
	for p, cl := range c.Set {
		if !s.Table.Holds(p, cl) {
			return false
		}
	}
	for _, p := range c.Release {
		if _, ok := s.Table[p]; ok {
			return false
		}
	}
	return true
}

// Commit writes ch against s, one write per shard it changes, each guarded
// by the resourceVersion s read (a shard s did not see is created, and
// AlreadyExists is a conflict too). It refuses to take a port that s shows
// held by another claim, or one in a broken shard. A shard that conflicts
// returns an error wrapping ErrConflict; shards written before it stay
// written, which is safe because every claim written is one the caller
// wanted against a state that was current.
func Commit(ctx context.Context, c client.Client, namespace string, s Snapshot, ch Change) error {
	next := map[int32]map[int32]Claim{}
	shard := func(first int32) map[int32]Claim {
		if m, ok := next[first]; ok {
			return m
		}
		// The shard's own ports, not the whole record: a pass that claims
		// one port must not walk every claim.
		m := map[int32]Claim{}
		for p := first; p < first+contract.PortClaimsShard; p++ {
			if cl, ok := s.Table[p]; ok {
				m[p] = cl
			}
		}
		next[first] = m
		return m
	}
	for p, cl := range ch.Set {
		if s.Table.Holds(p, cl) {
			continue
		}
		if err := cl.Validate(); err != nil {
			return fmt.Errorf("claim port %d: %w", p, err)
		}
		first := contract.PortClaimsShardOf(p)
		if err := s.Broken[first]; err != nil {
			return fmt.Errorf("claim port %d: %w", p, err)
		}
		if held, ok := s.Table[p]; ok {
			return fmt.Errorf("claim port %d for %s: held by %s: %w", p, cl, held, ErrConflict)
		}
		shard(first)[p] = cl
	}
	for _, p := range ch.Release {
		if _, ok := s.Table[p]; ok {
			delete(shard(contract.PortClaimsShardOf(p)), p)
		}
	}
	for _, first := range slices.Sorted(maps.Keys(next)) {
		if err := writeShard(ctx, c, namespace, s.shards[first], first, next[first]); err != nil {
			return err
		}
	}
	return nil
}

func writeShard(ctx context.Context, c client.Client, namespace string, cur *corev1.ConfigMap, first int32, claims map[int32]Claim) error {
	data := map[string]string{contract.PortClaimsKey: Encode(claims)}
	name := contract.PortClaimsName(first)
	var err error
	if cur == nil {
		err = c.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
				Labels: map[string]string{contract.LabelPortClaims: "true"}},
			Data: data,
		})
	} else {
		next := cur.DeepCopy()
		next.Data = data
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		next.Labels[contract.LabelPortClaims] = "true"
		err = c.Update(ctx, next) // guarded by cur's resourceVersion
	}
	switch {
	case err == nil:
		return nil
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("write %s: %w", name, ErrConflict)
	default:
		return fmt.Errorf("write %s: %w", name, err)
	}
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Reader reads the record like Read, but decodes a shard again only when
// its resourceVersion changed: at 10k imports the record holds 20k claims,
// and a pass that recomputes one export must not parse all of them. The
// decoded maps are shared between reads and never modified.
//
// When no shard changed since the last read, Read returns that read's
// Snapshot itself, index included: a pass in steady state (an export's
// label changed) then costs nothing in claims. Snapshots are read-only.
type Reader struct {
	mu     sync.Mutex
	shards map[string]decodedShard
	last   Snapshot
	lastOK bool
}

type decodedShard struct {
	rv     string
	claims map[int32]Claim
	err    error
}

// Read loads every claims ConfigMap in namespace from r, as Read does.
func (d *Reader) Read(ctx context.Context, r client.Reader, namespace string) (Snapshot, error) {
	var list corev1.ConfigMapList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.HasLabels{contract.LabelPortClaims},
		client.UnsafeDisableDeepCopy); err != nil {
		return Snapshot{}, fmt.Errorf("list port claims: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shards == nil {
		d.shards = map[string]decodedShard{}
	}
	if d.lastOK && d.unchangedLocked(list.Items) {
		return d.last, nil
	}
	s := newSnapshot()
	seen := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		cm := &list.Items[i]
		first, ok := shardOf(cm.Name)
		if !ok {
			continue
		}
		seen[cm.Name] = true
		s.shards[first] = cm
		dec, ok := d.shards[cm.Name]
		if !ok || dec.rv != cm.ResourceVersion || cm.ResourceVersion == "" {
			dec = decodedShard{rv: cm.ResourceVersion}
			dec.claims, dec.err = Decode(first, cm.Data[contract.PortClaimsKey])
			d.shards[cm.Name] = dec
		}
		if dec.err != nil {
			s.Broken[first] = dec.err
			continue
		}
		maps.Copy(s.Table, dec.claims)
	}
	for name := range d.shards {
		if !seen[name] {
			delete(d.shards, name)
		}
	}
	d.last, d.lastOK = s, true
	return s, nil
}

// unchangedLocked reports whether items are exactly the shards, at the
// same resourceVersions, that the last Snapshot was read from.
func (d *Reader) unchangedLocked(items []corev1.ConfigMap) bool {
	n := 0
	for i := range items {
		cm := &items[i]
		if _, ok := shardOf(cm.Name); !ok {
			continue
		}
		n++
		dec, ok := d.shards[cm.Name]
		if !ok || dec.rv != cm.ResourceVersion || cm.ResourceVersion == "" {
			return false
		}
	}
	return n == len(d.shards)
}
