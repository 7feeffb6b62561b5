package clusterset_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/steering"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func toImport(name string) gwv1.ParentReference {
	return gwv1.ParentReference{Group: ptr.To(gwv1.Group(steering.ParentGroup)), Kind: ptr.To(gwv1.Kind(steering.ParentKind)), Name: gwv1.ObjectName(name)}
}

func weighted(name string, w int32) gwv1.BackendRef {
	return gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))}, Weight: ptr.To(w)}
}

// ourConditions renders Ferry's conditions on a route's first parent as
// "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs", or "" when
// there is no entry of Ferry's.
func ourConditions(parents []gwv1.RouteParentStatus) string {
	for _, p := range parents {
		if p.ControllerName != clusterset.ControllerName {
			continue
		}
		var out []string
		for _, c := range p.Conditions {
			out = append(out, c.Type+"="+string(c.Status)+"/"+c.Reason)
		}
		return strings.Join(out, " ")
	}
	return ""
}

// A TCPRoute whose parent is a ServiceImport steers the clusterset service:
// the controller records the policy on the clusterset Service and writes
// the route's status; a steady state writes nothing; a broken edit keeps
// the weights; bad routes get their conditions and change nothing else;
// another controller's status entries are left alone.
func TestRoutesSteerClustersetServices(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "steer")
	writes := startClusterset(t, west)
	mk := &mirrorMaker{c: west, ns: ns, next: 42000}
	mk.add(t, "echo", "east", true, 80)
	mk.add(t, "echo", "north", true, 80)

	svcKey := types.NamespacedName{Namespace: ns, Name: contract.ClustersetName("echo")}
	policy := func() string {
		var s corev1.Service
		if err := west.Client.Get(ctx, svcKey, &s); err != nil {
			return "<none>"
		}
		return s.Annotations[contract.AnnotationSteering]
	}
	testkit.Eventually(t, "the clusterset service", func() bool { return policy() == "" })

	route := &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "split"},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{toImport("echo")}},
			Rules:           []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{weighted("echo-east", 90), weighted("echo-north", 10)}}},
		},
	}
	if err := west.Client.Create(ctx, route); err != nil {
		t.Fatal(err)
	}
	want := "route=TCPRoute/" + ns + "/split weights=east:90,north:10"
	key := types.NamespacedName{Namespace: ns, Name: "split"}
	testkit.Eventually(t, "the policy recorded and the route accepted", func() bool {
		if err := west.Client.Get(ctx, key, route); err != nil {
			t.Fatal(err)
		}
		return policy() == want && ourConditions(route.Status.Parents) == "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs"
	})
	accepted := meta.FindStatusCondition(route.Status.Parents[0].Conditions, "Accepted")
	if accepted.ObservedGeneration != route.Generation || accepted.LastTransitionTime.IsZero() || !strings.Contains(accepted.Message, "per connection") {
		t.Errorf("Accepted %+v", accepted)
	}

	// Steady state: a forced pass writes nothing, route status included.
	time.Sleep(300 * time.Millisecond)
	before := writes.Snapshot()
	var si mcsv1beta1.ServiceImport
	if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "echo"}, &si); err != nil {
		t.Fatal(err)
	}
	si.Annotations = map[string]string{"touched": "yes"}
	if err := west.Client.Update(ctx, &si); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := writes.Since(before); len(got) != 0 {
		t.Fatalf("steady state wrote: %v", got)
	}

	// A broken edit (a typo in a backend) is not applied: the weights last
	// applied stay, and the status says why.
	route.Spec.Rules[0].BackendRefs[0].Name = "echo-eats"
	if err := west.Client.Update(ctx, route); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the broken edit reported", func() bool {
		if err := west.Client.Get(ctx, key, route); err != nil {
			t.Fatal(err)
		}
		return ourConditions(route.Status.Parents) == "Accepted=False/UnresolvedRefs ResolvedRefs=False/BackendNotFound"
	})
	if got := policy(); got != want {
		t.Errorf("after a broken edit the policy is %q, want %q kept", got, want)
	}
	if c := meta.FindStatusCondition(route.Status.Parents[0].Conditions, "ResolvedRefs"); !strings.Contains(c.Message, "echo-eats") {
		t.Errorf("ResolvedRefs %+v does not name the backend", c)
	}

	// Bad routes: each gets its condition, and nothing else changes.
	bad := []struct {
		name, want string
		edit       func(*gwv1.TCPRoute)
	}{
		{"not-a-clusterset", "Accepted=False/NoMatchingParent ResolvedRefs=False/BackendNotFound", func(r *gwv1.TCPRoute) {
			r.Spec.ParentRefs = []gwv1.ParentReference{toImport("web")}
		}},
		{"not-a-mirror", "Accepted=False/UnresolvedRefs ResolvedRefs=False/BackendNotFound", func(r *gwv1.TCPRoute) {
			r.Spec.Rules[0].BackendRefs = []gwv1.BackendRef{weighted("kubernetes", 1)}
		}},
		{"younger", "Accepted=False/Conflicted ResolvedRefs=True/ResolvedRefs", func(*gwv1.TCPRoute) {}},
	}
	for _, b := range bad {
		r := &gwv1.TCPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: b.name},
			Spec: gwv1.TCPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{toImport("echo")}},
				Rules:           []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{weighted("echo-north", 1)}}},
			},
		}
		b.edit(r)
		if err := west.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, b.name+" reported", func() bool {
			if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: b.name}, r); err != nil {
				t.Fatal(err)
			}
			return ourConditions(r.Status.Parents) == b.want
		})
		if got := policy(); got != want {
			t.Errorf("route %s changed the policy to %q", b.name, got)
		}
	}
	// A negative or huge weight never reaches Ferry: the API server refuses
	// the route, with the field in the error.
	for _, w := range []int32{-1, 1_000_001} {
		r := &gwv1.TCPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weight"},
			Spec: gwv1.TCPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{toImport("echo")}},
				Rules:           []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{weighted("echo-east", w)}}},
			},
		}
		if err := west.Client.Create(ctx, r); err == nil || !strings.Contains(err.Error(), "weight") {
			t.Errorf("weight %d: the API server accepted the route (%v)", w, err)
		}
	}

	// Fixed: applied; another controller's entry in the same status stays.
	if err := west.Client.Get(ctx, key, route); err != nil {
		t.Fatal(err)
	}
	other := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "edge"}, ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}
	route.Status.Parents = append(route.Status.Parents, other)
	if err := west.Client.Status().Update(ctx, route); err != nil {
		t.Fatal(err)
	}
	route.Spec.Rules[0].BackendRefs[0].Name = "echo-east"
	route.Spec.Rules[0].BackendRefs[1].Weight = ptr.To[int32](30)
	if err := west.Client.Update(ctx, route); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the fixed route applied", func() bool {
		if err := west.Client.Get(ctx, key, route); err != nil {
			t.Fatal(err)
		}
		return policy() == "route=TCPRoute/"+ns+"/split weights=east:90,north:30" && ourConditions(route.Status.Parents) == "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs"
	})
	if len(route.Status.Parents) != 2 || route.Status.Parents[0].ControllerName != "example.com/other" {
		t.Errorf("another controller's entry was not kept: %+v", route.Status.Parents)
	}

	// The affinity on the ServiceImport joins the policy; the route deleted,
	// the weights go and the tiers stay.
	if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "echo"}, &si); err != nil {
		t.Fatal(err)
	}
	si.Annotations[contract.AnnotationAffinity] = "north > east"
	if err := west.Client.Update(ctx, &si); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.Delete(ctx, route); err != nil {
		t.Fatal(err)
	}
	// The younger route takes over once the older is gone.
	testkit.Eventually(t, "the younger route and the tiers", func() bool {
		return policy() == "route=TCPRoute/"+ns+"/younger weights=north:1 tiers=north>east"
	})
}
