package clusterset

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
)

// DefaultConsistencyInterval is how often the reconciler recomputes every
// clusterset service though no event asked for it. Between those checks a
// pass recomputes only the services whose objects, mirrors or local
// exports changed (a scoped pass); the full pass catches what no event
// reports and writes nothing when nothing differs.
const DefaultConsistencyInterval = 10 * time.Minute

// Field indexes on the objects a scoped pass reads by key. Mirrors and
// their slices are read through the importer's (mirror.IndexRemote,
// mirror.IndexSlices), which importer.ConfigureManager registers.
const (
	// indexKey holds "<namespace>/<service>" of a clusterset slice (a
	// key's Service and ServiceImport are read by name: getMine).
	indexKey = "ferry.dev/clusterset-key"
)

// addIndexes registers the indexes above with the manager's cache.
func addIndexes(ctx context.Context, idx client.FieldIndexer) error {
	mine := func(o client.Object) []string {
		svc, ok := o.GetLabels()[contract.LabelClusterset]
		if !ok {
			return nil
		}
		return []string{o.GetNamespace() + "/" + svc}
	}
	for _, ix := range []struct {
		obj   client.Object
		field string
		fn    client.IndexerFunc
	}{
		{&discoveryv1.EndpointSlice{}, indexKey, mine},
	} {
		if err := idx.IndexField(ctx, ix.obj, ix.field, ix.fn); err != nil {
			return fmt.Errorf("index %T by %s: %w", ix.obj, ix.field, err)
		}
	}
	return nil
}

// pendingKeys is what changed since the last pass: keys, or everything.
// Event handlers write it, the one reconcile takes it.
type pendingKeys struct {
	mu   sync.Mutex
	all  bool
	keys map[Key]struct{}
}

func (p *pendingKeys) touch(all bool, keys ...Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[Key]struct{}{}
	}
	if all {
		p.all, p.keys = true, map[Key]struct{}{}
		return
	}
	if p.all {
		return
	}
	for _, k := range keys {
		p.keys[k] = struct{}{}
	}
}

// take returns everything pending, or, short of everything, at most limit
// keys in key order; more says whether keys were left.
func (p *pendingKeys) take(limit int) (all bool, keys []Key, more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all = p.all
	keys = sortKeys(slices.Collect(maps.Keys(p.keys)))
	p.all, p.keys = false, map[Key]struct{}{}
	if len(keys) > limit {
		for _, k := range keys[limit:] {
			p.keys[k] = struct{}{}
		}
		keys, more = keys[:limit], true
	}
	return all, keys, more
}

// keyOf names the clusterset service an object belongs to: a clusterset
// object by its label, a mirror by its remote-service annotation, and a
// mirror's slice by the mirror its label names (read from the cache).
// ok is false when the object names none that can be found.
func (r *Reconciler) keyOf(ctx context.Context, obj client.Object) (Key, bool) {
	if svc, mine := obj.GetLabels()[contract.LabelClusterset]; mine {
		return Key{Namespace: obj.GetNamespace(), Service: svc}, true
	}
	if _, owned := mirror.OwnerOf(obj); !owned {
		return Key{}, false
	}
	if remote, ok := obj.GetAnnotations()[contract.AnnotationRemoteService]; ok {
		if _, isSvc := obj.(*corev1.Service); isSvc {
			return Key{Namespace: obj.GetNamespace(), Service: remote}, true
		}
	}
	name, ok := obj.GetLabels()[discoveryv1.LabelServiceName]
	if _, isSlice := obj.(*discoveryv1.EndpointSlice); !isSlice || !ok {
		return Key{}, false
	}
	var svc corev1.Service
	err := r.c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, &svc,
		&client.GetOptions{UnsafeDisableDeepCopy: ptr.To(true)})
	remote, named := svc.Annotations[contract.AnnotationRemoteService]
	if err != nil || !named {
		return Key{}, false
	}
	return Key{Namespace: obj.GetNamespace(), Service: remote}, true
}

// observeKeys reads what the desired state of keys depends on, through the
// indexes: their mirrors and the mirrors' slices, their clusterset
// objects, and their local exports. The claims, Links, gateway and routes
// are read whole (they are few, or decoded once per change).
func (r *Reconciler) observeKeys(ctx context.Context, keys []Key) (Input, Objects, error) {
	in := Input{Ports: r.opts.Ports}
	var have Objects
	if r.opts.LocalExports != nil {
		if cur := r.opts.LocalExports.Current(); cur != nil && cur.Synced {
			in.LocalCluster, in.Local = r.opts.LocalCluster, map[exports.Key]exports.Export{}
			for _, k := range keys {
				ek := exports.Key{Namespace: k.Namespace, Name: k.Service}
				if e, ok := cur.Export(ek); ok {
					in.Local[ek] = e
				}
			}
		}
	}
	list := func(what string, l client.ObjectList, field, value string) error {
		if err := r.c.List(ctx, l, client.MatchingFields{field: value}, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("list %s of %s: %w", what, value, err)
		}
		return nil
	}
	var mirrors []*corev1.Service
	for _, k := range keys {
		var ms corev1.ServiceList
		var ss discoveryv1.EndpointSliceList
		v := k.String()
		if err := list("mirrors", &ms, mirror.IndexRemote, v); err != nil {
			return in, have, err
		}
		if err := list("clusterset slices", &ss, indexKey, v); err != nil {
			return in, have, err
		}
		mirrors = append(mirrors, pointers(ms.Items)...)
		have.Slices = append(have.Slices, pointers(ss.Items)...)
		cs, si := &corev1.Service{}, &mcsv1beta1.ServiceImport{}
		if found, err := r.getMine(ctx, cs, k, contract.ClustersetName(k.Service)); err != nil {
			return in, have, err
		} else if found {
			have.Services = append(have.Services, cs)
		}
		if found, err := r.getMine(ctx, si, k, k.Service); err != nil {
			return in, have, err
		} else if found {
			have.Imports = append(have.Imports, si)
		}
	}
	for _, m := range mirrors {
		var sl discoveryv1.EndpointSliceList
		if err := list("mirror slices", &sl, mirror.IndexSlices, m.Namespace+"/"+m.Name); err != nil {
			return in, have, err
		}
		in.MirrorSlices = append(in.MirrorSlices, pointers(sl.Items)...)
	}
	in.Mirrors = mirrors
	in.Current = have.Services
	return in, have, nil
}

// getMine reads the clusterset object of k named name into obj, and says
// whether there is one that is k's (labelled for it). A key's Service and
// ServiceImport have names fixed by the key, so they are read by name
// rather than kept in an index: an index costs a few hundred bytes on
// every object it holds. One of k's objects under another name (left by
// an older release) is found and removed by the next full pass.
func (r *Reconciler) getMine(ctx context.Context, obj client.Object, k Key, name string) (bool, error) {
	err := r.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: name}, obj, &client.GetOptions{UnsafeDisableDeepCopy: ptr.To(true)})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get %s/%s: %w", k.Namespace, name, err)
	}
	return obj.GetLabels()[contract.LabelClusterset] == k.Service, nil
}

// scopeOf holds the clusterset port keys of keys, to restrict the claims
// a scoped pass plans: every other claim is neither renewed nor released.
func scopeOf(keys []Key) func(mirror.PortKey) bool {
	names := make(map[string]bool, len(keys))
	for _, k := range keys {
		names[k.Namespace+"/"+contract.ClustersetName(k.Service)] = true
	}
	return func(pk mirror.PortKey) bool { return names[pk.Namespace+"/"+pk.Service] }
}

// routesTouch reports whether a route lives in, or names a parent in, the
// namespace of any key: route statuses are written by full passes only,
// so a change to a service that a route may name takes one. Routes are
// few; services are many.
func routesTouch(routes steering.Routes, keys []Key) bool {
	nss := map[string]bool{}
	for _, k := range keys {
		nss[k.Namespace] = true
	}
	touches := func(ns string, parents []gwv1.ParentReference) bool {
		if nss[ns] {
			return true
		}
		for _, p := range parents {
			if p.Namespace != nil && nss[string(*p.Namespace)] {
				return true
			}
		}
		return false
	}
	for _, rt := range routes.TCP {
		if touches(rt.Namespace, rt.Spec.ParentRefs) {
			return true
		}
	}
	for _, rt := range routes.HTTP {
		if touches(rt.Namespace, rt.Spec.ParentRefs) {
			return true
		}
	}
	return false
}

// problemTally is the clusterset services that cannot be written, per key,
// as the last passes left them, with the foreign object in the way: a
// scoped pass replaces its keys' entries, a full pass all of them. It is
// what the problems announced (and the blockers watched) are computed
// from.
type problemTally struct {
	byKey map[Key][]notedProblem
}

type notedProblem struct {
	p   Problem
	obj client.Object // the foreign object in the way, if any
}

func (t *problemTally) reset() { t.byKey = map[Key][]notedProblem{} }

func (t *problemTally) forget(keys []Key) {
	for _, k := range keys {
		delete(t.byKey, k)
	}
}

func (t *problemTally) add(ps []Problem, seen map[string]client.Object) {
	if t.byKey == nil {
		t.reset()
	}
	for _, p := range ps {
		t.byKey[p.Key] = append(t.byKey[p.Key], notedProblem{p: p, obj: seen[p.Object]})
	}
}

// all returns every problem, by key, and the objects in the way.
func (t *problemTally) all() ([]Problem, map[string]client.Object) {
	var ps []Problem
	seen := map[string]client.Object{}
	for _, k := range sortKeys(slices.Collect(maps.Keys(t.byKey))) {
		for _, n := range t.byKey[k] {
			ps = append(ps, n.p)
			if n.obj != nil {
				seen[n.p.Object] = n.obj
			}
		}
	}
	return ps, seen
}
