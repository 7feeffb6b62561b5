package importer

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/slim"
)

// ConfigureManager sets the cache and client options the importer relies
// on. Call it on the manager.Options before manager.New.
//
//   - Services and EndpointSlices are cached cluster-wide, because a clash
//     with a foreign object must be seen without writing. Objects that no
//     Link owns are slimmed to name, namespace and labels (the gateway's own
//     slices excepted), which keeps the cache small in big clusters. Other
//     components sharing this manager therefore must not read foreign
//     Services' specs from its cache.
//   - Links are cached in their namespace only; managed fields are dropped
//     everywhere.
//   - Reads wait until the cache has seen this process's own writes
//     (read-your-writes), so the reconcile that follows a write never
//     recreates or rewrites what it just wrote.
//   - The cache is created with the mirror indexes (mirror.IndexRemote,
//     mirror.IndexSlices), which the clusterset reconciler reads too.
func ConfigureManager(o *manager.Options, gateway types.NamespacedName, linkNamespace string) {
	if o.Cache.ByObject == nil {
		o.Cache.ByObject = map[client.Object]cache.ByObject{}
	}
	if o.Cache.DefaultTransform == nil {
		o.Cache.DefaultTransform = slim.Transform
	}
	o.Cache.ByObject[&ferryv1.Link{}] = cache.ByObject{Namespaces: map[string]cache.Config{linkNamespace: {}}}
	o.Cache.ByObject[&corev1.Service{}] = cache.ByObject{Transform: slimForeign(gateway)}
	o.Cache.ByObject[&discoveryv1.EndpointSlice{}] = cache.ByObject{Transform: slimForeign(gateway)}
	o.Cache.ByObject[&corev1.Namespace{}] = cache.ByObject{Transform: slimNamespace}
	o.Cache.ByObject[&corev1.ConfigMap{}] = claims.CacheConfig(linkNamespace)
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.EnableReadYourWritesConsistency = ptr.To(true)
	newCache := o.NewCache
	if newCache == nil {
		newCache = cache.New
	}
	o.NewCache = func(cfg *rest.Config, co cache.Options) (cache.Cache, error) {
		c, err := newCache(cfg, co)
		if err != nil {
			return nil, err
		}
		if err := addIndexes(context.Background(), c); err != nil {
			return nil, err
		}
		return c, nil
	}
}

// slimForeign keeps Ferry-owned objects and the gateway's EndpointSlices
// whole (less their managed fields, with their metadata's strings shared:
// slim.Metadata), and reduces every other Service or EndpointSlice to what
// clash detection reads.
func slimForeign(gateway types.NamespacedName) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		o, ok := obj.(client.Object)
		if !ok {
			return obj, nil
		}
		slim.Metadata(o)
		if _, owned := mirror.OwnerOf(o); owned {
			return o, nil
		}
		if s, isSlice := o.(*discoveryv1.EndpointSlice); isSlice && s.Namespace == gateway.Namespace &&
			s.Labels[discoveryv1.LabelServiceName] == gateway.Name {
			return o, nil
		}
		meta := metav1.ObjectMeta{
			Name: o.GetName(), Namespace: o.GetNamespace(), UID: o.GetUID(),
			ResourceVersion: o.GetResourceVersion(), Labels: o.GetLabels(),
		}
		switch t := o.(type) {
		case *corev1.Service:
			return &corev1.Service{ObjectMeta: meta}, nil
		case *discoveryv1.EndpointSlice:
			return &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: t.AddressType}, nil
		}
		return o, nil
	}
}

func slimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, DeletionTimestamp: ns.DeletionTimestamp,
	}}, nil
}

// addIndexes registers the mirror indexes. The cache is not started yet,
// so ctx bounds nothing.
func addIndexes(ctx context.Context, idx client.FieldIndexer) error {
	remote := func(o client.Object) []string { return mirror.RemoteIndexKeys(o) }
	if err := idx.IndexField(ctx, &corev1.Service{}, mirror.IndexRemote, remote); err != nil {
		return fmt.Errorf("index services by export: %w", err)
	}
	owner := func(o client.Object) []string { return mirror.SliceIndexKeys(o) }
	if err := idx.IndexField(ctx, &discoveryv1.EndpointSlice{}, mirror.IndexSlices, owner); err != nil {
		return fmt.Errorf("index slices by mirror: %w", err)
	}
	return nil
}

// ownedFor returns the objects that link owns for the exports keys: the
// Services that mirror them, and the slices of those Services and of the
// mirror names the keys would have. names holds "<namespace>/<service>" of
// every such Service, owned or not yet: the scope of the keys' ports.
func (im *Importer) ownedFor(ctx context.Context, link, cluster string, keys []exports.Key) (out mirror.Objects, names map[string]bool, _ error) {
	names = map[string]bool{}
	for _, k := range keys {
		var svcs corev1.ServiceList
		if err := im.c.List(ctx, &svcs, client.MatchingFields{mirror.IndexRemote: k.Namespace + "/" + k.Name}, unsafeList); err != nil {
			return out, nil, fmt.Errorf("list mirrors of %s: %w", k, err)
		}
		names[k.Namespace+"/"+contract.MirrorName(k.Name, cluster)] = true
		for i := range svcs.Items {
			s := &svcs.Items[i]
			if owner, _ := mirror.OwnerOf(s); owner != link {
				continue
			}
			out.Services = append(out.Services, s)
			names[s.Namespace+"/"+s.Name] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		var sl discoveryv1.EndpointSliceList
		if err := im.c.List(ctx, &sl, client.MatchingFields{mirror.IndexSlices: n}, unsafeList); err != nil {
			return out, nil, fmt.Errorf("list slices of %s: %w", n, err)
		}
		for i := range sl.Items {
			if owner, _ := mirror.OwnerOf(&sl.Items[i]); owner == link {
				out.Slices = append(out.Slices, &sl.Items[i])
			}
		}
	}
	return out, names, nil
}

// unsafeList reads from the cache without deep copies: the objects are
// shared with the informer and must never be modified (mirror.Diff copies
// before it changes anything).
var unsafeList = client.UnsafeDisableDeepCopy

// ownedBy lists the objects a Link owns. It selects by the ownership labels
// (mirror.OwnerOf), which the cache matches by scanning every Service and
// slice: a pass over a whole Link is a consistency check, rare and O(N)
// anyway, and an index by Link would cost memory on every object for it.
func (im *Importer) ownedBy(ctx context.Context, link string) (mirror.Objects, error) {
	var out mirror.Objects
	owned, err := ownedSelector(link)
	if err != nil {
		return out, err
	}
	var svcs corev1.ServiceList
	if err := im.c.List(ctx, &svcs, owned, unsafeList); err != nil {
		return out, fmt.Errorf("list mirrors of link %s: %w", link, err)
	}
	var sliceList discoveryv1.EndpointSliceList
	if err := im.c.List(ctx, &sliceList, owned, unsafeList); err != nil {
		return out, fmt.Errorf("list mirror slices of link %s: %w", link, err)
	}
	out.Services = make([]*corev1.Service, len(svcs.Items))
	for i := range svcs.Items {
		out.Services[i] = &svcs.Items[i]
	}
	out.Slices = make([]*discoveryv1.EndpointSlice, len(sliceList.Items))
	for i := range sliceList.Items {
		out.Slices[i] = &sliceList.Items[i]
	}
	return out, nil
}

// ownedSelector selects what mirror.OwnerOf says link owns.
func ownedSelector(link string) (client.MatchingLabelsSelector, error) {
	sel := labels.NewSelector()
	for _, r := range []struct {
		key string
		op  selection.Operator
		val []string
	}{{contract.LabelLink, selection.Equals, []string{link}}, {contract.LabelSourceCluster, selection.Exists, nil}} {
		req, err := labels.NewRequirement(r.key, r.op, r.val)
		if err != nil {
			return client.MatchingLabelsSelector{}, fmt.Errorf("select objects of link %q: %w", link, err)
		}
		sel = sel.Add(*req)
	}
	return client.MatchingLabelsSelector{Selector: sel}, nil
}

// gatewayAddresses returns the ready addresses of the local gateway's pods,
// from the gateway Service's EndpointSlices.
func (im *Importer) gatewayAddresses(ctx context.Context) ([]string, error) {
	var sliceList discoveryv1.EndpointSliceList
	err := im.c.List(ctx, &sliceList, client.InNamespace(im.opts.Gateway.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: im.opts.Gateway.Name}, unsafeList)
	if err != nil {
		return nil, fmt.Errorf("list gateway endpoints: %w", err)
	}
	var out []string
	for _, s := range sliceList.Items {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) && !ptr.Deref(ep.Conditions.Terminating, false) {
				out = append(out, ep.Addresses...)
			}
		}
	}
	return out, nil
}

// namespaces returns the namespaces that exist and are not terminating
// (creating in a terminating namespace is refused).
func (im *Importer) namespaces(ctx context.Context) (map[string]bool, error) {
	var list corev1.NamespaceList
	if err := im.c.List(ctx, &list, unsafeList); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := make(map[string]bool, len(list.Items))
	for _, ns := range list.Items {
		if ns.DeletionTimestamp == nil {
			out[ns.Name] = true
		}
	}
	return out, nil
}

// cacheLookup answers mirror.Lookup from the cache. Errors other than
// NotFound are kept, so that a name is never taken as free when it could
// not be checked.
type cacheLookup struct {
	ctx context.Context
	c   client.Reader
	err error
}

func (l *cacheLookup) get(obj client.Object, ns, name string) metav1.Object {
	err := l.c.Get(l.ctx, types.NamespacedName{Namespace: ns, Name: name}, obj, &client.GetOptions{UnsafeDisableDeepCopy: ptr.To(true)})
	switch {
	case err == nil:
		return obj
	case apierrors.IsNotFound(err):
		return nil
	default:
		l.err = err
		return obj // treated as a clash until the next reconcile
	}
}

func (l *cacheLookup) Service(ns, name string) metav1.Object {
	return l.get(&corev1.Service{}, ns, name)
}

func (l *cacheLookup) EndpointSlice(ns, name string) metav1.Object {
	return l.get(&discoveryv1.EndpointSlice{}, ns, name)
}
