package steering

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"ferry.dev/ferry/internal/contract"
)

// Condition reasons Ferry adds to the Gateway API's own.
const (
	// ReasonConflicted: an older route already steers the service; one
	// route per service applies (the oldest, as the Gateway API orders
	// conflicting routes).
	ReasonConflicted gwv1.RouteConditionReason = "Conflicted"
	// ReasonUnresolvedRefs: a backendRef does not resolve, so the route is
	// not applied at all and the service keeps its split. An L4 split that
	// resets a share of the connections because of a typo is worse than
	// no change.
	ReasonUnresolvedRefs gwv1.RouteConditionReason = "UnresolvedRefs"
)

// Key names a clusterset service.
type Key struct{ Namespace, Name string }

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Service is one clusterset service of this cluster, as Resolve needs it.
type Service struct {
	Key
	// Clusters are the clusters that serve it, this one included when it
	// does (Local).
	Clusters []string
	Local    string
	// Ports are its port numbers.
	Ports []int32
	// Affinity is its ServiceImport's ferry.dev/affinity annotation.
	Affinity string
	// Current is the Policy recorded now. When the route it names stops
	// resolving (an edit with a typo), its weights are kept: a broken edit
	// changes no traffic.
	Current Policy
}

// Routes are the Gateway API routes of the cluster.
type Routes struct {
	TCP  []*gwv1.TCPRoute
	HTTP []*gwv1.HTTPRoute
}

// RouteStatus is Ferry's part of one route's status: one entry per
// parentRef that names a ServiceImport. The conditions carry no
// LastTransitionTime; whoever writes them keeps the old one when a
// condition has not changed (meta.SetStatusCondition).
type RouteStatus struct {
	Kind, Namespace, Name string
	Parents               []gwv1.RouteParentStatus
}

// Resolution is what Resolve decides.
type Resolution struct {
	// Policies holds each service's Policy; a service absent has the
	// default.
	Policies map[Key]Policy
	// AffinityErrors holds the services whose affinity annotation does not
	// parse: they have no tiers.
	AffinityErrors map[Key]error
	// Statuses are the routes with a ServiceImport parent, sorted by kind,
	// namespace and name.
	Statuses []RouteStatus
}

// Resolve checks every route that names a ServiceImport, picks the one that
// steers each service, and computes each service's Policy. controller is
// the ControllerName written in the route statuses.
func Resolve(services []Service, routes Routes, controller gwv1.GatewayController) Resolution {
	res := Resolution{Policies: map[Key]Policy{}, AffinityErrors: map[Key]error{}}
	byKey := map[Key]*Service{}
	for i := range services {
		s := &services[i]
		byKey[s.Key] = s
		a, err := ParseAffinity(s.Affinity)
		if err != nil {
			res.AffinityErrors[s.Key] = err
			continue
		}
		if tiers := a.resolve(s.Local); len(tiers) > 0 {
			res.Policies[s.Key] = Policy{Tiers: tiers}
		}
	}
	var all []route
	for _, r := range routes.TCP {
		all = append(all, fromTCPRoute(r))
	}
	for _, r := range routes.HTTP {
		all = append(all, fromHTTPRoute(r))
	}
	// The oldest route wins a service, then by kind, namespace and name.
	slices.SortFunc(all, func(a, b route) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.kind+"/"+a.namespace+"/"+a.name, b.kind+"/"+b.namespace+"/"+b.name)
	})
	winner := map[Key]string{}
	for _, r := range all {
		st := RouteStatus{Kind: r.kind, Namespace: r.namespace, Name: r.name}
		for _, p := range r.parents {
			ns, name, ok := ours(p, r.namespace)
			if !ok {
				continue
			}
			k := Key{Namespace: ns, Name: name}
			v := verdict(r, p, byKey[k])
			if held := byKey[k]; v.reason == ReasonUnresolvedRefs && held.Current.Route == r.String() && held.Current.Weights != nil {
				if _, taken := winner[k]; !taken {
					// The route steered the service until this edit: it
					// keeps steering with the weights last applied.
					winner[k] = r.String()
					pol := res.Policies[k]
					pol.Route, pol.Weights = r.String(), held.Current.Weights
					res.Policies[k] = pol
					v.message = fmt.Sprintf("this generation is not applied until every backendRef resolves; %s keeps the weights last applied", k)
				}
			}
			if v.accepted {
				if w, taken := winner[k]; taken && w != r.String() {
					v.accepted, v.reason, v.message = false, ReasonConflicted,
						fmt.Sprintf("%s, an older route, already steers %s; one route per service applies", w, k)
				} else {
					winner[k] = r.String()
					pol := res.Policies[k]
					pol.Route, pol.Weights = r.String(), v.weights
					res.Policies[k] = pol
				}
			}
			st.Parents = append(st.Parents, v.status(p, controller, r.generation))
		}
		if len(st.Parents) > 0 {
			res.Statuses = append(res.Statuses, st)
		}
	}
	slices.SortFunc(res.Statuses, func(a, b RouteStatus) int {
		return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
	})
	return res
}

// parentVerdict is what one route means for one parent.
type parentVerdict struct {
	accepted bool
	reason   gwv1.RouteConditionReason
	message  string
	// refsOK and refsReason/refsMessage are ResolvedRefs.
	refsOK      bool
	refsReason  gwv1.RouteConditionReason
	refsMessage string
	weights     map[string]uint32
}

func (v parentVerdict) status(p gwv1.ParentReference, controller gwv1.GatewayController, gen int64) gwv1.RouteParentStatus {
	cond := func(t gwv1.RouteConditionType, ok bool, reason gwv1.RouteConditionReason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: string(t), Status: s, Reason: string(reason), Message: msg, ObservedGeneration: gen}
	}
	return gwv1.RouteParentStatus{
		ParentRef: p, ControllerName: controller,
		Conditions: []metav1.Condition{
			cond(gwv1.RouteConditionAccepted, v.accepted, v.reason, v.message),
			cond(gwv1.RouteConditionResolvedRefs, v.refsOK, v.refsReason, v.refsMessage),
		},
	}
}

// verdict checks route r against parent p, the clusterset service svc (nil
// when there is none).
func verdict(r route, p gwv1.ParentReference, svc *Service) parentVerdict {
	ns, name, _ := ours(p, r.namespace)
	k := Key{Namespace: ns, Name: name}
	v := parentVerdict{refsOK: true, refsReason: gwv1.RouteReasonResolvedRefs, refsMessage: "every backendRef resolves"}
	refuse := func(reason gwv1.RouteConditionReason, format string, a ...any) parentVerdict {
		v.accepted, v.reason, v.message = false, reason, fmt.Sprintf(format, a...)
		return v
	}
	if svc == nil {
		v.refsOK, v.refsReason, v.refsMessage = false, gwv1.RouteReasonBackendNotFound, "the parent is not a clusterset service"
		return refuse(gwv1.RouteReasonNoMatchingParent, "%s is not a clusterset service in this cluster: no ServiceImport %s that Ferry manages", k, k)
	}
	refs, weights, err := resolveRefs(r, svc)
	if err != nil {
		v.refsOK, v.refsReason, v.refsMessage = false, err.reason, err.msg
	}
	switch {
	case ns != r.namespace:
		return refuse(gwv1.RouteReasonUnsupportedValue, "the route is in namespace %s and its parent in %s: routes outside the service's namespace (consumer routes) are not implemented", r.namespace, ns)
	case p.SectionName != nil:
		return refuse(gwv1.RouteReasonUnsupportedValue, "parentRef sectionName is not implemented: a route applies to the whole service")
	case p.Port != nil:
		return refuse(gwv1.RouteReasonUnsupportedValue, "parentRef port is not implemented: a route applies to every port of the service")
	case len(r.unsupported) > 0:
		return refuse(gwv1.RouteReasonUnsupportedValue, "not implemented by Ferry, which steers whole connections: %s", joinFeatures(r.unsupported))
	case err != nil && err.unsupported:
		return refuse(gwv1.RouteReasonUnsupportedValue, "%s", err.msg)
	case err != nil:
		return refuse(ReasonUnresolvedRefs, "not applied until every backendRef resolves; %s keeps the split it has", k)
	case refs == 0:
		return refuse(gwv1.RouteReasonUnsupportedValue, "no backendRefs: the route would refuse every connection")
	case total(weights) == 0:
		return refuse(gwv1.RouteReasonUnsupportedValue, "every backendRef weighs 0: the route would refuse every connection")
	}
	v.accepted, v.reason, v.weights = true, gwv1.RouteReasonAccepted, weights
	v.message = "weights apply per connection"
	if r.kind == KindHTTPRoute {
		v.message = "weights apply per connection, not per request: Ferry steers whole TCP connections"
	}
	return v
}

// refError is why a route's backendRefs do not resolve.
type refError struct {
	reason gwv1.RouteConditionReason
	msg    string
	// unsupported: the refs are well-formed but use a value Ferry refuses
	// (a weight out of range), which makes the route not accepted rather
	// than unresolved.
	unsupported bool
}

// resolveRefs maps each backendRef to a cluster of svc: its own name is this
// cluster's export, <svc>-<cluster> a cluster's mirror. Weights of refs to
// one cluster add up, as the Gateway API adds duplicate backends.
func resolveRefs(r route, svc *Service) (int, map[string]uint32, *refError) {
	weights := map[string]uint32{}
	serves := map[string]bool{}
	for _, c := range svc.Clusters {
		serves[c] = true
	}
	for i, b := range r.backends {
		where := fmt.Sprintf("backendRef %d (%s)", i+1, b.Name)
		switch {
		case b.Group != nil && *b.Group != "" || b.Kind != nil && *b.Kind != "Service":
			return 0, nil, &refError{reason: gwv1.RouteReasonInvalidKind, msg: where + ": only core Services are backends: this cluster's own " + svc.Name + ", or a mirror " + contract.MirrorName(svc.Name, "<cluster>")}
		case refNamespace(b, r.namespace) != svc.Namespace:
			return 0, nil, &refError{reason: gwv1.RouteReasonRefNotPermitted, msg: where + ": backends outside the service's namespace " + svc.Namespace + " are not implemented (ReferenceGrants are not read)"}
		case b.Weight != nil && (*b.Weight < 0 || *b.Weight > MaxWeight):
			return 0, nil, &refError{reason: gwv1.RouteReasonUnsupportedValue, msg: fmt.Sprintf("%s: weight %d outside 0..%d", where, *b.Weight, MaxWeight), unsupported: true}
		case b.Port != nil && !slices.Contains(svc.Ports, int32(*b.Port)):
			return 0, nil, &refError{reason: gwv1.RouteReasonBackendNotFound, msg: fmt.Sprintf("%s: port %d is not a port of %s (%v)", where, *b.Port, svc.Key, svc.Ports)}
		}
		cluster := clusterOf(string(b.Name), svc, serves)
		if cluster == "" {
			return 0, nil, &refError{reason: gwv1.RouteReasonBackendNotFound, msg: fmt.Sprintf("%s: not a backend of %s, whose backends are %s", where, svc.Key, backendsOf(svc))}
		}
		w := uint32(1)
		if b.Weight != nil {
			w = uint32(*b.Weight)
		}
		weights[cluster] = min(weights[cluster]+w, MaxWeight)
	}
	return len(r.backends), weights, nil
}

// refNamespace is the namespace a backendRef names: its own, or the route's.
func refNamespace(b gwv1.BackendRef, routeNS string) string {
	if b.Namespace != nil {
		return string(*b.Namespace)
	}
	return routeNS
}

// clusterOf is the cluster a backend name stands for, or "".
func clusterOf(name string, svc *Service, serves map[string]bool) string {
	if name == svc.Name {
		return svc.Local
	}
	for c := range serves {
		if c != svc.Local && name == contract.MirrorName(svc.Name, c) {
			return c
		}
	}
	return ""
}

// backendsOf lists svc's valid backend names, for messages.
func backendsOf(svc *Service) string {
	var names []string
	for _, c := range svc.Clusters {
		if c == svc.Local {
			names = append(names, svc.Name+" (this cluster)")
		} else {
			names = append(names, contract.MirrorName(svc.Name, c))
		}
	}
	return strings.Join(names, ", ")
}

func total(w map[string]uint32) uint64 {
	var t uint64
	for v := range maps.Values(w) {
		t += uint64(v)
	}
	return t
}
