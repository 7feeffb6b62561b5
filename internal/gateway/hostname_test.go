package gateway

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// headless publishes default/web:80 in east as a headless export whose
// ready pods are listed, and returns one backend per pod, each answering
// with its pod's name. The Service's endpoints are all of them; each pod's
// are its own.
func (p *pair) headless(t *testing.T, listed []string, pods ...string) map[string]*backend {
	t.Helper()
	e := exports.TCP("default", "web", 80)
	e.Type, e.Hostnames = exports.Headless, listed
	set := p.exports.Current().Map()
	set[e.Key] = e
	p.exports.Publish(set, nil)
	out := map[string]*backend{}
	var all []string
	for _, pod := range pods {
		b := newBackend(t, whoami(pod))
		out[pod] = b
		all = append(all, b.addr())
		p.endpoints.SetHost("default", "web", pod, 80, []string{b.addr()})
	}
	p.endpoints.Set("default", "web", 80, all)
	return out
}

// hostRoutes opens one egress port per hostname, each routed to
// default/web:80 in east at that pod, and returns their addresses.
func (p *pair) hostRoutes(t *testing.T, hostnames ...string) map[string]string {
	t.Helper()
	var routes []Route
	out := map[string]string{}
	for _, h := range hostnames {
		port := freePort(t)
		routes = append(routes, Route{Port: port, Namespace: "default", Destinations: []Destination{{
			Cluster: "east", Target: tunnel.Target{Namespace: "default", Service: "web", Port: 80, Hostname: h},
		}}})
		out[h] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	if err := p.eg.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	return out
}

func accepted(bes map[string]*backend) map[string]int64 {
	out := map[string]int64{}
	for name, b := range bes {
		out[name] = b.accepted.Load()
	}
	return out
}

// A route that names one pod of a headless export reaches that pod on
// every connection, through real tunnels; a pod that is not ready is
// refused, and no pod is reached in its place.
func TestHostnameRouteReachesOnlyThatPod(t *testing.T) {
	p := newPair(t, pairOpts{})
	// web-9 is not ready, so the export does not list it; its endpoints
	// are in the table anyway, so that only the authorization stops it.
	bes := p.headless(t, []string{"web-0", "web-1", "web-2"}, "web-0", "web-1", "web-2", "web-9")
	addrs := p.hostRoutes(t, "web-1", "web-9")

	const n = 20
	for i := range n {
		if got := hit(t, addrs["web-1"]); got != "web-1" {
			t.Fatalf("connection %d got %q, want web-1\n%s", i, got, p.failureCounters())
		}
	}
	if got := accepted(bes); got["web-1"] != n || got["web-0"]+got["web-2"]+got["web-9"] != 0 {
		t.Fatalf("backends accepted %v, want %d at web-1 only", got, n)
	}
	// One series per export, whatever pod was named.
	if got := testutil.ToFloat64(p.inMetrics.IngressOpened.WithLabelValues("west", "default/web")); got != n {
		t.Fatalf("ingress_streams_opened{west, default/web} = %v, want %d", got, n)
	}

	// web-9 is no ready pod of the export: denied, before any backend is
	// dialled.
	if got := hitOrRefused(t, addrs["web-9"]); got != "" {
		t.Fatalf("web-9 got %q, want a refused connection", got)
	}
	// Counted as the refusal happens, which the client may see first.
	testkit.EventuallyWithin(t, 2*time.Second, "rejected{"+ReasonUnknownHostname+"} = 1", func() bool { return p.rejected(ReasonUnknownHostname) == 1 })
	if got := accepted(bes); got["web-1"] != n || got["web-0"]+got["web-2"]+got["web-9"] != 0 {
		t.Fatalf("backends accepted %v after web-9, want only web-1's %d", got, n)
	}
	for _, pod := range []string{"web-0", "web-2", "web-9"} {
		if d := p.dialer.count(bes[pod].addr()); d != 0 {
			t.Fatalf("ingress dialled %s %d times", pod, d)
		}
	}
}

// When the export still lists a pod that has stopped being ready (the
// export set lags the EndpointSlices), the stream fails as unavailable, as
// a Service without endpoints does; the other pods are not a fallback.
func TestHostnameWithoutReadyEndpointIsUnavailable(t *testing.T) {
	p := newPair(t, pairOpts{})
	bes := p.headless(t, []string{"web-0", "web-1", "web-2"}, "web-0", "web-1", "web-2")
	p.endpoints.SetHost("default", "web", "web-1", 80, nil)
	addrs := p.hostRoutes(t, "web-1")

	if got := hitOrRefused(t, addrs["web-1"]); got != "" {
		t.Fatalf("web-1 got %q, want a refused connection", got)
	}
	testkit.EventuallyWithin(t, 2*time.Second, "failed{default/web, no_endpoints} ≥ 1", func() bool { return p.failed("default/web", ReasonNoEndpoints) >= 1 })
	for name, n := range accepted(bes) {
		if n != 0 {
			t.Fatalf("%s accepted %d connections for web-1", name, n)
		}
	}
}

// The authorizer allows a hostname only as the export publishes it: one of
// a headless export's listed (ready) pods.
func TestExportAuthorizerHostnames(t *testing.T) {
	caller := contract.GatewayID("ferry.local", "west")
	web := exports.TCP("default", "web", 80)
	web.Type, web.Hostnames = exports.Headless, []string{"web-0", "web-1"}
	api := exports.TCP("default", "api", 80) // ClusterSetIP
	p := exports.NewPublisher()
	p.Publish(exports.Of(web, api), nil)
	a := NewExportAuthorizer(p)
	target := func(svc string, port int, host string) tunnel.Target {
		return tunnel.Target{Namespace: "default", Service: svc, Port: port, Hostname: host}
	}
	cases := []struct {
		name string
		t    tunnel.Target
		want error
	}{
		{"a listed pod of a headless export", target("web", 80, "web-1"), nil},
		{"a pod not listed (not ready, or none)", target("web", 80, "web-2"), ErrUnknownHostname},
		{"a hostname on a ClusterSetIP export", target("api", 80, "web-1"), ErrUnknownHostname},
		{"no hostname on a headless export", target("web", 80, ""), nil},
		{"no hostname on a ClusterSetIP export", target("api", 80, ""), nil},
		{"the port is checked first", target("web", 81, "web-1"), ErrUnknownPort},
		{"not exported", target("db", 80, "web-1"), ErrNotExported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Authorize(caller, tc.t)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Authorize(%v) = %v, want %v", tc.t, err, tc.want)
			}
			if tc.want != nil && authzReason(err) == ReasonDenied {
				t.Fatalf("%v has no metric reason of its own", err)
			}
		})
	}
}

// hitOrRefused is hit for a connection that egress refuses: egress resets
// it at once, and a busy machine may deliver the reset before the dial
// returns, which is a refusal too. It returns what a backend sent, "" when
// none did.
func hitOrRefused(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := readAll(t, c)
	return string(b)
}
