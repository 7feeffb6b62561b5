package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/cli"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/steering"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// weightsRoute is a TCPRoute on echo's ServiceImport in west, weighing
// east's and north's mirrors.
func weightsRoute(name string, east, north int32) *gwv1.TCPRoute {
	return weightsRouteFor("echo", name, east, north)
}

// weightsRouteFor is weightsRoute for svc.
func weightsRouteFor(svc, name string, east, north int32) *gwv1.TCPRoute {
	ref := func(svc string, w int32) gwv1.BackendRef {
		return gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))}, Weight: ptr.To(w)}
	}
	return &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptr.To(gwv1.Group(steering.ParentGroup)), Kind: ptr.To(gwv1.Kind(steering.ParentKind)), Name: gwv1.ObjectName(svc),
			}}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{ref(contract.MirrorName(svc, "east"), east), ref(contract.MirrorName(svc, "north"), north)}}},
		},
	}
}

// waitAccepted waits until Ferry accepts the route at its current
// generation.
func waitAccepted(ctx context.Context, t *testing.T, r *gwv1.TCPRoute) {
	t.Helper()
	key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := west.API.Client.Get(ctx, key, r); err != nil {
			return false, nil
		}
		for _, p := range r.Status.Parents {
			c := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
			if p.ControllerName == contract.GatewayControllerName && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == r.Generation {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("route %s never accepted: %+v\nwest controller:\n%s", key, r.Status, west.Controller.Tail(20))
	}
}

// Weights (issue 12): a TCPRoute with 90/10 splits 2,000 connections
// 90/10 within 3 points; changed to 0/100, every new connection goes to
// north within 1 s of the write, and a connection opened before the change
// carries on. The service, canary, is this test's alone, so that the
// gateways' last-minute counts `ferry traffic` shows are its own.
func TestClustersetRouteWeights(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, c := range []*sandbox.Cluster{east, north} {
		w, err := c.Echo(ctx, ns, "canary", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		if err := c.Export(ctx, ns, "canary"); err != nil {
			t.Fatal(err)
		}
	}
	set := contract.ClustersetName("canary")
	before := waitServedBy(ctx, t, set, "east", "north")

	r := weightsRouteFor("canary", "canary-split", 90, 10)
	if err := west.API.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = west.API.Client.Delete(context.Background(), r) })
	waitAccepted(ctx, t, r)
	// The policy reaches the gateway through the clusterset Service.
	waitPolicy(ctx, t, "canary", "weights=east:90,north:10")
	waitGatewayApplies(ctx, t, "canary", "east", "ferry_gateway_clusterset_weight", 90)
	const n = 2000
	served := serveFrom(ctx, t, set, n)
	t.Logf("90/10 route: %d connections served %v", n, served)
	if d := served["east"] - n*9/10; d < -n*3/100 || d > n*3/100 || served["east"]+served["north"] != n {
		t.Errorf("90/10 route: east served %d of %d, want %d ± %d: %v", served["east"], n, n*9/10, n*3/100, served)
	}

	// ferry traffic shows the split in effect and the one observed.
	rep := trafficOf(ctx, t, "canary")
	byCluster := map[string]map[string]any{}
	for _, c := range rep["clusters"].([]any) {
		m := c.(map[string]any)
		byCluster[m["cluster"].(string)] = m
	}
	// Observed is the gateways' last minute: this test's 2,000 connections,
	// and some or all of those its wait for both clusters sent before the
	// route (the window drops what is older than a minute).
	for c, want := range map[string]float64{"east": 0.9, "north": 0.1} {
		m := byCluster[c]
		observed, _ := m["observedConnections"].(float64)
		if m == nil || m["configuredWeight"] != want*100 || m["expectedShare"] != want ||
			int(observed) < served[c] || int(observed) > served[c]+before[c] {
			t.Errorf("ferry traffic, %s: %v; want configured %v, expected %v, observed between %d and %d", c, m, want*100, want, served[c], served[c]+before[c])
		}
	}

	// A connection opened now, served by east, must outlive the change.
	held, heldBy := openServedBy(ctx, t, set, "east")
	defer held.Close()

	r.Spec.Rules[0].BackendRefs[0].Weight = ptr.To[int32](0)
	r.Spec.Rules[0].BackendRefs[1].Weight = ptr.To[int32](100)
	if err := west.API.Client.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	// Connections one after another from the write on: the last one east
	// serves marks when the change took effect.
	var lastEast, streakStart time.Time
	deadline := written.Add(10 * time.Second)
	northInARow := 0
	for northInARow < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("new connections still reach east 10 s after the route moved everything to north\nwest gateway:\n%s", west.Gateway.Tail(20))
		}
		start := time.Now()
		reply, err := west.Request(ctx, ns, set, 80, "after")
		if err != nil {
			t.Fatalf("request after the change: %v", err)
		}
		if strings.HasPrefix(reply, "east/") {
			lastEast, northInARow = start, 0
			continue
		}
		if northInARow == 0 {
			streakStart = start
		}
		northInARow++
	}
	// The change took effect at the latest when the run of north-only
	// connections began (east had 90% before it).
	took := streakStart.Sub(written)
	eastAfter := "none"
	if !lastEast.IsZero() {
		eastAfter = lastEast.Sub(written).Round(time.Millisecond).String()
	}
	t.Logf("0/100: north-only from %v after the write (east's last connection after it: %s); then 200 in a row went to north",
		took.Round(time.Millisecond), eastAfter)
	if took > time.Second {
		t.Errorf("the change took %v to apply to new connections, over 1 s", took)
	}
	// The connection opened before the change still works, still on east.
	if reply, err := held.ask("still there?"); err != nil || !strings.HasPrefix(reply, heldBy) {
		t.Errorf("a connection opened before the change was cut or moved: %q, %v", reply, err)
	}
}

// waitPolicy waits until svc's clusterset Service records a policy that
// contains want.
func waitPolicy(ctx context.Context, t *testing.T, svc, want string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := getService(ctx, west, contract.ClustersetName(svc))
		return err == nil && strings.Contains(s.Annotations[contract.AnnotationSteering], want), nil
	})
	if err != nil {
		t.Fatalf("the clusterset Service of %s never recorded %q", svc, want)
	}
}

// heldConn is a connection kept open across a change, one line per
// request.
type heldConn struct {
	net.Conn
	r *bufio.Reader
}

// ask sends one line and reads the reply line.
func (h *heldConn) ask(msg string) (string, error) {
	_ = h.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(h, msg+"\n"); err != nil {
		return "", err
	}
	line, err := h.r.ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// waitGatewayApplies waits until west's gateway applies value to svc's
// destination cluster in family (ferry_gateway_clusterset_weight or
// _tier): the policy has reached the data plane.
func waitGatewayApplies(ctx context.Context, t *testing.T, svc, cluster, family string, value float64) {
	t.Helper()
	westSees(ctx, t, fmt.Sprintf("%s of %s at %s = %v", family, svc, cluster, value), 30*time.Second, func(m string) bool {
		return metricIs(m, family, map[string]string{"service": ns + "/" + svc, "cluster": cluster}, func(v float64) bool { return v == value })
	})
}

// openServedBy opens connections to svc until one is served by cluster,
// and returns it open, with the tag of the pod that served it.
func openServedBy(ctx context.Context, t *testing.T, svc, cluster string) (*heldConn, string) {
	t.Helper()
	for range 200 {
		c, err := west.Dial(ctx, ns, svc, 80)
		if err != nil {
			t.Fatal(err)
		}
		h := &heldConn{Conn: c, r: bufio.NewReader(c)}
		reply, err := h.ask("who")
		if err == nil && strings.HasPrefix(reply, cluster+"/") {
			return h, strings.SplitN(reply, ":", 2)[0]
		}
		c.Close()
	}
	t.Fatalf("no connection to %s was served by %s in 200 tries", svc, cluster)
	return nil, ""
}

// Affinity local (issue 12): west and east both export near, and west's
// ServiceImport says "local": every connection stays in west. When west's
// pods turn not-ready, connections fail over to east with none failing,
// and they come back when the pods are ready again.
func TestClustersetAffinityLocal(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var local *sandbox.Workload
	for _, c := range []*sandbox.Cluster{east, west} {
		w, err := c.Echo(ctx, ns, "near", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		if c == west {
			local = w
		}
		if err := c.Export(ctx, ns, "near"); err != nil {
			t.Fatal(err)
		}
	}
	set := contract.ClustersetName("near")
	waitServedBy(ctx, t, set, "east", "west")

	// The affinity goes on the ServiceImport, which the controller writes:
	// retry on a conflict.
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var si mcsv1beta1.ServiceImport
		if err := west.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "near"}, &si); err != nil {
			return false, nil
		}
		if si.Annotations == nil {
			si.Annotations = map[string]string{}
		}
		si.Annotations[contract.AnnotationAffinity] = "local"
		return west.API.Client.Update(ctx, &si) == nil, nil
	})
	if err != nil {
		t.Fatal("could not annotate the ServiceImport")
	}
	waitPolicy(ctx, t, "near", "tiers=west")
	waitGatewayApplies(ctx, t, "near", "east", "ferry_gateway_clusterset_tier", 1)
	if served := serveFrom(ctx, t, set, 200); served["west"] != 200 {
		t.Fatalf("affinity local: 200 connections served %v, want all by west", served)
	}

	setLocalReady := func(ready bool) {
		t.Helper()
		eps := []testenv.Endpoint{{IP: local.Pods[0], Port: sandbox.EchoPort, Ready: ready}}
		if err := west.API.SetEndpoints(ctx, ns, "near", eps); err != nil {
			t.Fatal(err)
		}
	}
	load := startLoad(ctx, set, time.Minute)
	time.Sleep(time.Second)
	down := time.Now()
	setLocalReady(false)
	waitLoadServedBy(ctx, t, load, "east", down)
	time.Sleep(2 * time.Second)
	up := time.Now()
	setLocalReady(true)
	waitLoadServedBy(ctx, t, load, "west", up)
	time.Sleep(time.Second)
	rs := load.finish()

	var failed, eastServed, westAfterUp, eastAfterBack int
	var lastEast time.Time
	backAt, _ := firstServedBy(rs, "west", up)
	for _, r := range rs {
		switch {
		case r.err != nil:
			failed++
		case r.cluster == "east":
			eastServed++
			lastEast = r.start
			if r.start.After(backAt.Add(time.Second)) {
				eastAfterBack++
			}
		case r.cluster == "west" && r.start.After(up):
			westAfterUp++
		}
	}
	firstEast, _ := firstServedBy(rs, "east", down)
	t.Logf("affinity local, %d connections at %d/s: %d failed; pods not-ready: east took over %v later; ready again: west took back %v later, and east served its last %v after that",
		len(rs), failoverRate, failed, firstEast.Sub(down).Round(time.Millisecond), backAt.Sub(up).Round(time.Millisecond), lastEast.Sub(backAt).Round(time.Millisecond))
	if failed != 0 {
		t.Errorf("%d connections failed while west's pods turned not-ready and back\n%s", failed, failures(rs))
	}
	if eastServed == 0 || westAfterUp == 0 {
		t.Errorf("east served %d while west's pods were not ready, west %d after they came back", eastServed, westAfterUp)
	}
	// Once west serves again, the affinity sends nothing more to east (a
	// second's grace for connections that started before the change).
	if eastAfterBack != 0 {
		t.Errorf("%d connections went to east more than 1 s after west was back", eastAfterBack)
	}
}

// waitLoadServedBy waits until the load has a connection, started after
// since, that cluster served.
func waitLoadServedBy(ctx context.Context, t *testing.T, l *connLoad, cluster string, since time.Time) {
	t.Helper()
	if err := loadServedBy(ctx, l, cluster, since, 30*time.Second); err != nil {
		t.Fatalf("no connection served by %s after %s\nwest gateway:\n%s", cluster, since.Format("15:04:05.000"), west.Gateway.Tail(20))
	}
}

// trafficOf runs `ferry traffic svc -o json` against west, logs the table,
// and returns the JSON.
func trafficOf(ctx context.Context, t *testing.T, svc string) map[string]any {
	t.Helper()
	kubeconfig, err := sb.ForwardAPIServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		out, errOut, err := cli.Run(ctx, append([]string{"--kubeconfig", kubeconfig, "--context", "west", "-n", ns, "traffic", svc}, args...)...)
		if err != nil {
			t.Fatalf("ferry traffic %s: %v\n%s%s", svc, err, out, errOut)
		}
		return out
	}
	t.Logf("ferry traffic %s:\n%s", svc, run())
	var rep map[string]any
	if err := json.Unmarshal([]byte(run("-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// A cluster whose ready endpoints drop to 0 stops taking new connections
// within 2 s, and no connection fails meanwhile (issue 12): north's echo
// pods turn not-ready while a west pod opens 100 connections a second to
// echo's clusterset service.
func TestClustersetStopsSendingWhereNothingIsReady(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	set := contract.ClustersetName("echo")
	waitServedBy(ctx, t, set, "east", "north")
	var northEps []testenv.Endpoint
	var slices discoveryv1.EndpointSliceList
	if err := north.API.Client.List(ctx, &slices, clientInNS(ns), matchService("echo")); err != nil {
		t.Fatal(err)
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			northEps = append(northEps, testenv.Endpoint{IP: ep.Addresses[0], Port: sandbox.EchoPort, Ready: true})
		}
	}
	setReady := func(ready bool) {
		t.Helper()
		eps := make([]testenv.Endpoint, len(northEps))
		for i, ep := range northEps {
			ep.Ready = ready
			eps[i] = ep
		}
		if err := north.API.SetEndpoints(ctx, ns, "echo", eps); err != nil {
			t.Fatal(err)
		}
	}
	defer setReady(true)
	// A not-ready north cannot serve; what must stop is west sending it
	// connections to try: the attempts that fail there.
	attemptsAtNorth := func() float64 {
		text, err := west.GatewayMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := sandbox.MetricSum(text, "ferry_gateway_clusterset_attempts_failed_total", map[string]string{"service": ns + "/echo", "cluster": "north"})
		return v
	}

	load := startLoad(ctx, set, time.Minute)
	time.Sleep(time.Second)
	before := attemptsAtNorth()
	down := time.Now()
	setReady(false)
	var lastAttempt time.Time
	for last := before; time.Since(down) < 4*time.Second; time.Sleep(50 * time.Millisecond) {
		if n := attemptsAtNorth(); n != last {
			last, lastAttempt = n, time.Now()
		}
	}
	attempts := attemptsAtNorth() - before
	up := time.Now()
	setReady(true)
	waitLoadServedBy(ctx, t, load, "north", up)
	rs := load.finish()
	var failed, servedByNorth int
	for _, r := range rs {
		if r.err != nil {
			failed++
		}
		if r.cluster == "north" && r.start.After(down) && r.start.Before(up) {
			servedByNorth++
		}
	}
	stopped := time.Duration(0)
	if !lastAttempt.IsZero() {
		stopped = lastAttempt.Sub(down)
	}
	back, _ := firstServedBy(rs, "north", up)
	t.Logf("north's pods not-ready: %v connections tried north and went on to east, the last seen %v after the change (metrics polled every 50 ms); %d connections at %d/s, %d failed, %d served by north meanwhile; north served again %v after its pods were ready",
		attempts, stopped.Round(time.Millisecond), len(rs), failoverRate, failed, servedByNorth, back.Sub(up).Round(time.Millisecond))
	if stopped > ejectionBound {
		t.Errorf("west still sent connections to north %v after its pods turned not-ready, over %v", stopped, ejectionBound)
	}
	if failed != 0 {
		t.Errorf("%d connections failed\n%s", failed, failures(rs))
	}
}

// Bad routes in the sandbox (issue 12): weights that do not resolve, a
// backendRef to a Service that is not a mirror, and a route for a name that
// is not a clusterset service each get their condition, and nothing else
// changes: the policy stays the default and connections still reach both
// clusters. Negative and huge weights never get that far: the API server
// refuses the route.
func TestClustersetBadRoutesChangeNothing(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	set := contract.ClustersetName("echo")
	waitServedBy(ctx, t, set, "east", "north")
	bad := map[string]struct {
		edit func(*gwv1.TCPRoute)
		want string // Accepted's reason
	}{
		"typo":       {func(r *gwv1.TCPRoute) { r.Spec.Rules[0].BackendRefs[0].Name = "echo-eats" }, "UnresolvedRefs"},
		"not-mirror": {func(r *gwv1.TCPRoute) { r.Spec.Rules[0].BackendRefs[1].Name = "local" }, "UnresolvedRefs"},
		"no-parent":  {func(r *gwv1.TCPRoute) { r.Spec.ParentRefs[0].Name = "nothing" }, "NoMatchingParent"},
	}
	for name, b := range bad {
		r := weightsRoute("bad-"+name, 1, 1)
		b.edit(r)
		if err := west.API.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = west.API.Client.Delete(context.Background(), r) })
	}
	for name, b := range bad {
		key := types.NamespacedName{Namespace: ns, Name: "bad-" + name}
		var got *metav1.Condition
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var r gwv1.TCPRoute
			if err := west.API.Client.Get(ctx, key, &r); err != nil {
				return false, nil
			}
			for _, p := range r.Status.Parents {
				if p.ControllerName == contract.GatewayControllerName {
					got = meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
				}
			}
			return got != nil, nil
		})
		if err != nil || got.Status != metav1.ConditionFalse || got.Reason != b.want {
			t.Errorf("route %s: Accepted %+v, want False/%s", key.Name, got, b.want)
			continue
		}
		t.Logf("route %s: Accepted=False %s: %s", key.Name, got.Reason, got.Message)
	}
	for _, w := range []int32{-1, 1_000_001} {
		r := weightsRoute("bad-weight", w, 1)
		if err := west.API.Client.Create(ctx, r); err == nil || !strings.Contains(err.Error(), "weight") {
			t.Errorf("weight %d: the API server accepted the route (%v)", w, err)
			_ = west.API.Client.Delete(ctx, r)
		}
	}
	s, err := getService(ctx, west, set)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Annotations[contract.AnnotationSteering]; p != "" {
		t.Errorf("bad routes changed the policy to %q", p)
	}
	if served := serveFrom(ctx, t, set, 100); served["east"] == 0 || served["north"] == 0 {
		t.Errorf("with bad routes, 100 connections served %v, want both clusters", served)
	}
}
