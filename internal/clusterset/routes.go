package clusterset

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/steering"
	"ferry.dev/ferry/internal/writer"
)

// ControllerName is Ferry's name in the routes' status.
const ControllerName = gwv1.GatewayController(contract.GatewayControllerName)

// Gateway API routes are optional: a cluster without their CRDs has
// clusterset services with the default split. Which kinds are served is
// read once, at Setup; CRDs installed later take effect when the
// controller restarts (docs/steering.md).

// RoutesGroupVersion is where the routes Ferry reads are served: the
// Gateway API's standard channel.
var RoutesGroupVersion = schema.GroupVersion{Group: gwv1.GroupName, Version: "v1"}

// routeKinds are the route kinds the cluster serves.
type routeKinds struct{ tcp, http bool }

func (k routeKinds) any() bool { return k.tcp || k.http }

// servedRouteKinds asks the API server which of the route kinds it serves
// at gateway.networking.k8s.io/v1 (through the REST mapper), and whether
// this controller may list and watch them: a watch it may not make would
// keep the whole manager from syncing, so a kind it may not read is left
// out, with a warning (an install whose RBAC predates the routes).
func servedRouteKinds(mapper meta.RESTMapper, authz authorizationv1client.SelfSubjectAccessReviewInterface, log *slog.Logger) (routeKinds, error) {
	var k routeKinds
	for _, c := range []struct {
		kind string
		set  *bool
	}{{steering.KindTCPRoute, &k.tcp}, {steering.KindHTTPRoute, &k.http}} {
		m, err := mapper.RESTMapping(RoutesGroupVersion.WithKind(c.kind).GroupKind(), RoutesGroupVersion.Version)
		switch {
		case meta.IsNoMatchError(err):
			continue
		case err != nil:
			return k, fmt.Errorf("discover %s: %w", c.kind, err)
		}
		allowed := true
		for _, verb := range []string{"list", "watch"} {
			ok, err := mayAll(authz, verb, m.Resource.Resource)
			if err != nil {
				return k, fmt.Errorf("may the controller %s %s: %w", verb, m.Resource.Resource, err)
			}
			allowed = allowed && ok
		}
		if !allowed {
			log.Warn("Gateway API routes are served but this controller may not list and watch them: its RBAC predates them; re-run `ferry install` (or upgrade the chart) to steer clusterset services with routes",
				"resource", m.Resource.Resource+"."+m.Resource.Group)
			continue
		}
		*c.set = true
	}
	return k, nil
}

// mayAll asks the API server whether this client may verb the route
// resource in every namespace.
func mayAll(authz authorizationv1client.SelfSubjectAccessReviewInterface, verb, resource string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := authz.Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: gwv1.GroupName, Resource: resource, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return r.Status.Allowed, nil
}

func listRoutes(ctx context.Context, c client.Reader, kinds routeKinds) (steering.Routes, error) {
	var out steering.Routes
	if kinds.tcp {
		var l gwv1.TCPRouteList
		if err := c.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
			return out, fmt.Errorf("list TCPRoutes: %w", err)
		}
		out.TCP = pointers(l.Items)
	}
	if kinds.http {
		var l gwv1.HTTPRouteList
		if err := c.List(ctx, &l, client.UnsafeDisableDeepCopy); err != nil {
			return out, fmt.Errorf("list HTTPRoutes: %w", err)
		}
		out.HTTP = pointers(l.Items)
	}
	return out, nil
}

// RouteStatusOps returns the status writes that make each route's entries
// for ControllerName equal to want's: ours replaced, other controllers'
// kept, ours removed from routes that no longer name a ServiceImport. A
// condition that has not changed keeps its LastTransitionTime; one that has
// gets now. Routes being deleted are left alone.
func RouteStatusOps(want []steering.RouteStatus, have steering.Routes, now time.Time) []writer.Op {
	byName := map[string][]gwv1.RouteParentStatus{}
	for _, w := range want {
		byName[w.Kind+"/"+w.Namespace+"/"+w.Name] = w.Parents
	}
	var ops []writer.Op
	for _, r := range have.TCP {
		if st, changed := mergeParents(r.Status.Parents, byName[steering.KindTCPRoute+"/"+r.Namespace+"/"+r.Name], now); changed && r.DeletionTimestamp == nil {
			out := r.DeepCopy()
			out.Status.Parents = st
			ops = append(ops, writer.Op{Verb: writer.UpdateStatus, Object: out})
		}
	}
	for _, r := range have.HTTP {
		if st, changed := mergeParents(r.Status.Parents, byName[steering.KindHTTPRoute+"/"+r.Namespace+"/"+r.Name], now); changed && r.DeletionTimestamp == nil {
			out := r.DeepCopy()
			out.Status.Parents = st
			ops = append(ops, writer.Op{Verb: writer.UpdateStatus, Object: out})
		}
	}
	return ops
}

// mergeParents replaces ControllerName's entries of cur by want, keeping
// each unchanged condition's LastTransitionTime, and reports whether
// anything changed.
func mergeParents(cur, want []gwv1.RouteParentStatus, now time.Time) ([]gwv1.RouteParentStatus, bool) {
	var out []gwv1.RouteParentStatus
	var mine []gwv1.RouteParentStatus
	for _, p := range cur {
		if p.ControllerName == ControllerName {
			mine = append(mine, p)
		} else {
			out = append(out, p)
		}
	}
	changed := len(mine) != len(want)
	for _, w := range want {
		i := slices.IndexFunc(mine, func(p gwv1.RouteParentStatus) bool { return apiequality.Semantic.DeepEqual(p.ParentRef, w.ParentRef) })
		var conds []metav1.Condition
		if i >= 0 {
			conds = slices.Clone(mine[i].Conditions)
		} else {
			changed = true
		}
		for _, c := range w.Conditions {
			old := meta.FindStatusCondition(conds, c.Type)
			if old == nil || old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message || old.ObservedGeneration != c.ObservedGeneration {
				changed = true
			}
			c.LastTransitionTime = metav1.NewTime(now)
			meta.SetStatusCondition(&conds, c)
		}
		// Conditions of ours that want no longer has go.
		conds = slices.DeleteFunc(conds, func(c metav1.Condition) bool {
			gone := !slices.ContainsFunc(w.Conditions, func(x metav1.Condition) bool { return x.Type == c.Type })
			changed = changed || gone
			return gone
		})
		out = append(out, gwv1.RouteParentStatus{ParentRef: w.ParentRef, ControllerName: ControllerName, Conditions: conds})
	}
	return out, changed
}

// noteAffinity reports each ServiceImport affinity that does not parse,
// once per value: a log line and a Warning Event on the ServiceImport.
// imports are every ServiceImport (full), or those of keys (a scoped
// pass, which leaves what other keys announced).
func (r *Reconciler) noteAffinity(errs map[steering.Key]error, imports []*mcsv1beta1.ServiceImport, keys []Key, full bool) {
	seen := map[Key]string{}
	if !full {
		seen = maps.Clone(r.affinityErrors)
		if seen == nil {
			seen = map[Key]string{}
		}
		for _, k := range keys {
			delete(seen, k)
		}
	}
	for _, si := range imports {
		k := Key{Namespace: si.Namespace, Service: si.Name}
		err := errs[steering.Key{Namespace: si.Namespace, Name: si.Name}]
		if err == nil {
			continue
		}
		was := r.affinityErrors[k]
		seen[k] = err.Error()
		if was == err.Error() {
			continue
		}
		r.log.Warn("ServiceImport affinity does not parse; the service has no affinity", "service", k.String(), "err", err)
		r.recorder.Eventf(si, nil, corev1.EventTypeWarning, "InvalidAffinity", "Steer",
			"%s: %v; no affinity applies until it is fixed (docs/steering.md)", contract.AnnotationAffinity, err)
	}
	r.affinityErrors = seen
}
