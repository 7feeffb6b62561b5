package steering

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const controller = gwv1.GatewayController("ferry.dev/clusterset")

var epoch = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// echo is the clusterset service shop/echo, served by east, north and
// this cluster, west.
var echo = Service{Key: Key{"shop", "echo"}, Clusters: []string{"east", "north", "west"}, Local: "west", Ports: []int32{80}}

func importParent(name string) gwv1.ParentReference {
	return gwv1.ParentReference{Group: ptr.To(gwv1.Group(ParentGroup)), Kind: ptr.To(gwv1.Kind(ParentKind)), Name: gwv1.ObjectName(name)}
}

func backend(name string, weight int32) gwv1.BackendRef {
	return gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))}, Weight: ptr.To(weight)}
}

func tcpRoute(name string, age time.Duration, parent gwv1.ParentReference, refs ...gwv1.BackendRef) *gwv1.TCPRoute {
	return &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 3, CreationTimestamp: metav1.NewTime(epoch.Add(-age))},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent}},
			Rules:           []gwv1.TCPRouteRule{{BackendRefs: refs}},
		},
	}
}

func httpRoute(name string, edit func(*gwv1.HTTPRoute), refs ...gwv1.BackendRef) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(epoch)},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{importParent("echo")}},
			Rules: []gwv1.HTTPRouteRule{{
				// What the API server defaults an empty rule's matches to.
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/")}}},
			}},
		},
	}
	for _, b := range refs {
		r.Spec.Rules[0].BackendRefs = append(r.Spec.Rules[0].BackendRefs, gwv1.HTTPBackendRef{BackendRef: b})
	}
	if edit != nil {
		edit(r)
	}
	return r
}

// conditions renders a route's first parent's conditions as
// "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs".
func conditions(st RouteStatus) (string, string) {
	var out, msgs []string
	for _, c := range st.Parents[0].Conditions {
		out = append(out, c.Type+"="+string(c.Status)+"/"+c.Reason)
		msgs = append(msgs, c.Message)
	}
	return strings.Join(out, " "), strings.Join(msgs, " | ")
}

func TestResolve(t *testing.T) {
	const ok = "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs"
	for _, tc := range []struct {
		name    string
		routes  Routes
		want    string // the first route's conditions
		message string // part of its messages
		weights map[string]uint32
	}{
		{
			name:    "a TCPRoute splits 90/10 between a mirror and this cluster",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("split", 0, importParent("echo"), backend("echo-east", 90), backend("echo", 10))}},
			want:    ok,
			message: "per connection",
			weights: map[string]uint32{"east": 90, "west": 10},
		},
		{
			name:    "an HTTPRoute's weights apply per connection, and its status says so",
			routes:  Routes{HTTP: []*gwv1.HTTPRoute{httpRoute("split", nil, backend("echo-north", 1), backend("echo-east", 3))}},
			want:    ok,
			message: "not per request",
			weights: map[string]uint32{"north": 1, "east": 3},
		},
		{
			name:    "a backendRef without a weight weighs 1, and duplicates add up",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("dup", 0, importParent("echo"), gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo-east"}}, backend("echo-east", 2))}},
			want:    ok,
			weights: map[string]uint32{"east": 3},
		},
		{
			name: "HTTPRoute matches, filters and timeouts are refused by name",
			routes: Routes{HTTP: []*gwv1.HTTPRoute{httpRoute("fancy", func(r *gwv1.HTTPRoute) {
				r.Spec.Rules[0].Matches[0].Path.Value = ptr.To("/api")
				r.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier}}
				r.Spec.Rules[0].Timeouts = &gwv1.HTTPRouteTimeouts{}
			}, backend("echo-east", 1))}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=True/ResolvedRefs",
			message: "matches, filters, timeouts",
		},
		{
			name:    "a parent that is not a clusterset service",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("nowhere", 0, importParent("web"), backend("web-east", 1))}},
			want:    "Accepted=False/NoMatchingParent ResolvedRefs=False/BackendNotFound",
			message: "shop/web is not a clusterset service",
		},
		{
			name:    "a backendRef that is not a mirror of the service",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("typo", 0, importParent("echo"), backend("echo-eats", 1))}},
			want:    "Accepted=False/UnresolvedRefs ResolvedRefs=False/BackendNotFound",
			message: "echo-east, echo-north, echo (this cluster)",
		},
		{
			name: "a backendRef of another kind",
			routes: Routes{TCP: []*gwv1.TCPRoute{tcpRoute("kind", 0, importParent("echo"), gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
				Group: ptr.To(gwv1.Group(ParentGroup)), Kind: ptr.To(gwv1.Kind(ParentKind)), Name: "echo"}})}},
			want: "Accepted=False/UnresolvedRefs ResolvedRefs=False/InvalidKind",
		},
		{
			name: "a backendRef in another namespace",
			routes: Routes{TCP: []*gwv1.TCPRoute{tcpRoute("ns", 0, importParent("echo"), gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
				Name: "echo-east", Namespace: ptr.To(gwv1.Namespace("other"))}})}},
			want: "Accepted=False/UnresolvedRefs ResolvedRefs=False/RefNotPermitted",
		},
		{
			name:    "a negative weight",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("neg", 0, importParent("echo"), backend("echo-east", -1))}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=False/UnsupportedValue",
			message: "weight -1 outside 0..1000000",
		},
		{
			name:    "a huge weight",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("huge", 0, importParent("echo"), backend("echo-east", 1<<30))}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=False/UnsupportedValue",
			message: "outside 0..1000000",
		},
		{
			name:    "every weight zero",
			routes:  Routes{TCP: []*gwv1.TCPRoute{tcpRoute("zero", 0, importParent("echo"), backend("echo-east", 0), backend("echo", 0))}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=True/ResolvedRefs",
			message: "every backendRef weighs 0",
		},
		{
			name: "a parent port",
			routes: Routes{TCP: []*gwv1.TCPRoute{tcpRoute("port", 0, func() gwv1.ParentReference {
				p := importParent("echo")
				p.Port = ptr.To(gwv1.PortNumber(80))
				return p
			}(), backend("echo-east", 1))}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=True/ResolvedRefs",
			message: "parentRef port",
		},
		{
			name: "a parentRef that names the route's own namespace",
			routes: Routes{TCP: []*gwv1.TCPRoute{tcpRoute("consumer", 0, func() gwv1.ParentReference {
				p := importParent("echo")
				p.Namespace = ptr.To(gwv1.Namespace("shop"))
				return p
			}(), backend("echo-east", 1))}},
			want:    ok, // same namespace, written out: still a producer route
			weights: map[string]uint32{"east": 1},
		},
		{
			name: "a consumer route, in another namespace than the service",
			routes: Routes{TCP: []*gwv1.TCPRoute{func() *gwv1.TCPRoute {
				p := importParent("echo")
				p.Namespace = ptr.To(gwv1.Namespace("shop"))
				r := tcpRoute("consumer", 0, p, backend("echo-east", 1))
				r.Namespace = "frontend"
				return r
			}()}},
			want:    "Accepted=False/UnsupportedValue ResolvedRefs=False/RefNotPermitted",
			message: "consumer routes",
		},
		{
			name: "the older of two routes wins",
			routes: Routes{TCP: []*gwv1.TCPRoute{
				tcpRoute("newer", time.Minute, importParent("echo"), backend("echo-north", 1)),
				tcpRoute("older", time.Hour, importParent("echo"), backend("echo-east", 1)),
			}},
			want:    "Accepted=False/Conflicted ResolvedRefs=True/ResolvedRefs", // "newer" sorts first by name
			message: "TCPRoute shop/older, an older route, already steers shop/echo",
			weights: map[string]uint32{"east": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Resolve([]Service{echo}, tc.routes, controller)
			if len(res.Statuses) == 0 {
				t.Fatal("no status")
			}
			got, msgs := conditions(res.Statuses[0])
			if got != tc.want || !strings.Contains(msgs, tc.message) {
				t.Errorf("conditions %s (%s)\nwant %s (containing %q)", got, msgs, tc.want, tc.message)
			}
			p := res.Statuses[0].Parents[0]
			if p.ControllerName != controller || p.Conditions[0].ObservedGeneration == 0 {
				t.Errorf("parent status %+v", p)
			}
			pol, steered := res.Policies[echo.Key]
			if tc.weights == nil {
				if steered {
					t.Errorf("policy %+v, want the default", pol)
				}
			} else if !reflect.DeepEqual(pol.Weights, tc.weights) || pol.Route == "" {
				t.Errorf("policy %+v, want weights %v", pol, tc.weights)
			}
		})
	}
}

// Routes whose parents are not ServiceImports belong to other
// implementations: Ferry writes no status for them.
func TestResolveLeavesOtherParentsAlone(t *testing.T) {
	svcParent := gwv1.ParentReference{Kind: ptr.To(gwv1.Kind("Service")), Name: "echo"}
	gatewayParent := gwv1.ParentReference{Name: "edge"}
	r := tcpRoute("mesh", 0, svcParent, backend("echo-east", 1))
	r.Spec.ParentRefs = append(r.Spec.ParentRefs, gatewayParent)
	res := Resolve([]Service{echo}, Routes{TCP: []*gwv1.TCPRoute{r}}, controller)
	if len(res.Statuses) != 0 || len(res.Policies) != 0 {
		t.Fatalf("statuses %+v, policies %+v", res.Statuses, res.Policies)
	}
	// A route with both: only the ServiceImport parent gets Ferry's entry.
	r.Spec.ParentRefs = append(r.Spec.ParentRefs, importParent("echo"))
	res = Resolve([]Service{echo}, Routes{TCP: []*gwv1.TCPRoute{r}}, controller)
	if len(res.Statuses) != 1 || len(res.Statuses[0].Parents) != 1 || res.Statuses[0].Parents[0].ParentRef.Name != "echo" {
		t.Fatalf("statuses %+v", res.Statuses)
	}
}

func TestResolveAffinity(t *testing.T) {
	svcs := []Service{echo, echo, echo}
	svcs[0].Affinity = "local"
	svcs[1].Key, svcs[1].Affinity = Key{"shop", "b"}, "local > east"
	svcs[2].Key, svcs[2].Affinity = Key{"shop", "c"}, "east >> north"
	res := Resolve(svcs, Routes{TCP: []*gwv1.TCPRoute{tcpRoute("split", 0, importParent("echo"), backend("echo-east", 1), backend("echo", 1))}}, controller)
	if p := res.Policies[echo.Key]; !reflect.DeepEqual(p.Tiers, [][]string{{"west"}}) || p.Weights["east"] != 1 {
		t.Errorf("echo: %+v", p)
	}
	if p := res.Policies[Key{"shop", "b"}]; !reflect.DeepEqual(p.Tiers, [][]string{{"west"}, {"east"}}) || p.Weights != nil {
		t.Errorf("b: %+v", p)
	}
	if _, ok := res.Policies[Key{"shop", "c"}]; ok || res.AffinityErrors[Key{"shop", "c"}] == nil {
		t.Errorf("c: a bad affinity must leave the default and an error: %+v", res)
	}
}

// A route that steers a service and is then edited into one whose refs do
// not resolve keeps the weights last applied: the broken edit changes no
// traffic, and its status says so. A route that never applied changes
// nothing either: the service keeps the default.
func TestBrokenEditKeepsTheWeightsLastApplied(t *testing.T) {
	svc := echo
	svc.Current = Policy{Route: "TCPRoute shop/split", Weights: map[string]uint32{"east": 90, "west": 10}}
	typo := tcpRoute("split", 0, importParent("echo"), backend("echo-eats", 90), backend("echo", 10))
	res := Resolve([]Service{svc}, Routes{TCP: []*gwv1.TCPRoute{typo}}, controller)
	got, msgs := conditions(res.Statuses[0])
	if got != "Accepted=False/UnresolvedRefs ResolvedRefs=False/BackendNotFound" || !strings.Contains(msgs, "keeps the weights last applied") {
		t.Errorf("conditions %s (%s)", got, msgs)
	}
	if p := res.Policies[echo.Key]; !reflect.DeepEqual(p, svc.Current) {
		t.Errorf("policy %+v, want the one last applied %+v", p, svc.Current)
	}
	// The same broken route, never applied: the default stays.
	res = Resolve([]Service{echo}, Routes{TCP: []*gwv1.TCPRoute{typo}}, controller)
	if p, ok := res.Policies[echo.Key]; ok {
		t.Errorf("a route that never applied set %+v", p)
	}
	// A younger route cannot take over while the broken one holds.
	other := tcpRoute("other", -time.Minute, importParent("echo"), backend("echo-north", 1))
	res = Resolve([]Service{svc}, Routes{TCP: []*gwv1.TCPRoute{typo, other}}, controller)
	if p := res.Policies[echo.Key]; p.Route != "TCPRoute shop/split" {
		t.Errorf("policy %+v", p)
	}
}
