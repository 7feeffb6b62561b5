package claims

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"ferry.dev/ferry/internal/contract"
)

// CacheConfig restricts a cache's ConfigMaps to the claims in namespace:
// nothing else of the cluster's ConfigMaps is ever read.
func CacheConfig(namespace string) cache.ByObject {
	req, err := labels.NewRequirement(contract.LabelPortClaims, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key: cannot fail
	}
	return cache.ByObject{
		Namespaces: map[string]cache.Config{namespace: {}},
		Label:      labels.NewSelector().Add(*req),
	}
}

// ChangedOwners returns, sorted, the owners whose claims differ between two
// versions of a claims ConfigMap (nil for a create or a delete). A shard that
// does not decode counts as holding nothing here: its owners are woken
// when it breaks and when it is mended.
func ChangedOwners(before, after *corev1.ConfigMap) []Owner {
	decode := func(cm *corev1.ConfigMap) map[int32]Claim {
		if cm == nil {
			return nil
		}
		first, ok := shardOf(cm.Name)
		if !ok {
			return nil
		}
		m, err := Decode(first, cm.Data[contract.PortClaimsKey])
		if err != nil {
			return nil
		}
		return m
	}
	a, b := decode(before), decode(after)
	changed := map[Owner]bool{}
	for p, c := range a {
		if b[p] != c {
			changed[c.Owner] = true
		}
	}
	for p, c := range b {
		if a[p] != c {
			changed[c.Owner] = true
		}
	}
	return slices.Sorted(maps.Keys(changed))
}

// Handler turns claims ConfigMap events into requests: requests is called
// with the owners whose claims the event changed, and never with none.
func Handler(requests func([]Owner) []reconcile.Request) handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], before, after client.Object) {
		b, _ := before.(*corev1.ConfigMap)
		a, _ := after.(*corev1.ConfigMap)
		if owners := ChangedOwners(b, a); len(owners) > 0 {
			for _, r := range requests(owners) {
				q.Add(r)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, nil, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object, nil)
		},
	}
}
