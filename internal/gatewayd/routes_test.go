package gatewayd

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/tunnel"
)

const mesh = "ferry.local"

func link(name, cluster, id string, addrs ...string) *ferryv1.Link {
	return &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: name},
		Spec:       ferryv1.LinkSpec{ClusterName: cluster, GatewayIdentity: id, GatewayAddresses: addrs},
	}
}

func mirrorSvc(ns, name, linkName, cluster, remote string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{contract.LabelLink: linkName, contract.LabelSourceCluster: cluster},
			Annotations: map[string]string{contract.AnnotationRemoteService: remote}},
		Spec: corev1.ServiceSpec{Ports: ports},
	}
	return s
}

// aged makes a Service created `ago` before a fixed instant.
func aged(s *corev1.Service, ago time.Duration) *corev1.Service {
	s.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(-ago))
	return s
}

// forged marks s as a Service Ferry did not write: claimsOf leaves it out.
func forged(s *corev1.Service) *corev1.Service {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations["test/forged"] = "true"
	return s
}

func forgedIn(svcs []*corev1.Service) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range svcs {
		if s.Annotations["test/forged"] == "true" {
			out = append(out, s)
		}
	}
	return out
}

// deleting marks s as being deleted and held by a finalizer.
func deleting(s *corev1.Service) *corev1.Service {
	now := metav1.Now()
	s.DeletionTimestamp, s.Finalizers = &now, []string{"tenant.example/hold"}
	return s
}

// claimsOf claims every port of svcs as the controller would have (the
// first Service to name a port gets it), except those of the Services in
// forged, and vouches for each listed cluster of a clusterset Service with a
// claimed mirror (on ports from 18999 down), except the cluster its
// test/unvouched annotation names.
func claimsOf(links []*ferryv1.Link, svcs []*corev1.Service, forged ...*corev1.Service) claims.Table {
	t := claims.Table{}
	spare := int32(18999)
	for _, s := range svcs {
		if slices.Contains(forged, s) {
			continue
		}
		owner := claims.Clusterset
		if l := s.Labels[contract.LabelLink]; l != "" {
			owner = claims.LinkOwner(l)
		}
		for _, p := range s.Spec.Ports {
			if _, held := t[p.TargetPort.IntVal]; !held {
				t[p.TargetPort.IntVal] = claims.Claim{Owner: owner, Namespace: s.Namespace, Service: s.Name, Port: p.Port}
			}
		}
		svc, isClusterset := s.Labels[contract.LabelClusterset]
		if !isClusterset {
			continue
		}
		for c := range strings.SplitSeq(s.Annotations[contract.AnnotationClusters], ",") {
			if strings.TrimSpace(c) == s.Annotations["test/unvouched"] {
				continue
			}
			for _, l := range links {
				if l.Spec.ClusterName != strings.TrimSpace(c) {
					continue
				}
				// The cluster's mirror, claimed for every clusterset port
				// but those a test says the cluster lacks.
				for _, p := range s.Spec.Ports {
					if s.Annotations["test/lacks"] == fmt.Sprintf("%s:%d", l.Spec.ClusterName, p.Port) {
						continue
					}
					t[spare] = claims.Claim{Owner: claims.LinkOwner(l.Name), Namespace: s.Namespace, Service: contract.MirrorName(svc, l.Spec.ClusterName), Port: p.Port}
					spare--
				}
			}
		}
	}
	return t
}

func port(p, target int32) corev1.ServicePort {
	return corev1.ServicePort{Port: p, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP}
}

func TestRemotes(t *testing.T) {
	eastGW := contract.GatewayID(mesh, "east").String()
	cases := []struct {
		name     string
		links    []*ferryv1.Link
		want     map[string]tunnel.Remote
		problems []string
	}{
		{
			name:  "one link",
			links: []*ferryv1.Link{link("east", "east", eastGW, "198.19.0.12:4143", "198.19.0.13:4143")},
			want: map[string]tunnel.Remote{"east": {
				Addresses: []string{"198.19.0.12:4143", "198.19.0.13:4143"},
				Identity:  contract.GatewayID(mesh, "east"),
			}},
		},
		{
			name:     "identity of another cluster refused",
			links:    []*ferryv1.Link{link("east", "east", contract.GatewayID(mesh, "north").String(), "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{`belongs to cluster "north", not "east"`},
		},
		{
			name:     "controller identity refused as a gateway",
			links:    []*ferryv1.Link{link("east", "east", contract.ControllerID(mesh, "east").String(), "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{"is not a gateway"},
		},
		{
			name:     "identity from another mesh refused",
			links:    []*ferryv1.Link{link("east", "east", "spiffe://east.other.mesh/ns/ferry-system/sa/ferry-gateway", "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{"is not in mesh"},
		},
		{
			name:     "two links for one cluster: first by name wins",
			links:    []*ferryv1.Link{link("z-east", "east", eastGW, "198.19.0.99:4143"), link("east", "east", eastGW, "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{"east": {Addresses: []string{"198.19.0.12:4143"}, Identity: contract.GatewayID(mesh, "east")}},
			problems: []string{"another Link already names cluster east"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := Remotes(mesh, tc.links)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("remotes = %+v, want %+v", got, tc.want)
			}
			checkProblems(t, problems, tc.problems)
		})
	}
}

func TestRoutes(t *testing.T) {
	links := []*ferryv1.Link{link("east", "east", "", ""), link("north", "north", "", "")}
	dest := func(cluster, ns, svc string, p int) []gateway.Destination {
		return []gateway.Destination{{Cluster: cluster, Target: tunnel.Target{Namespace: ns, Service: svc, Port: p}}}
	}
	long := strings.Repeat("l", 60)
	cases := []struct {
		name     string
		mirrors  []*corev1.Service
		want     []gateway.Route
		problems []string
	}{
		{
			name:    "each port listens on its targetPort",
			mirrors: []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo", port(80, 11000), port(443, 11001))},
			want:    []gateway.Route{{Port: 11000, Namespace: "app", Destinations: dest("east", "app", "foo", 80)}, {Port: 11001, Namespace: "app", Destinations: dest("east", "app", "foo", 443)}},
		},
		{
			name: "a host mirror routes to its one pod, and its headless mirror routes nothing",
			mirrors: []*corev1.Service{
				func() *corev1.Service {
					s := mirrorSvc("db", "web-east", "east", "east", "web", port(80, 80))
					s.Spec.ClusterIP = corev1.ClusterIPNone
					s.Annotations[contract.AnnotationExportType] = string(exports.Headless)
					return s
				}(),
				func() *corev1.Service {
					s := mirrorSvc("db", "web-east-web-1", "east", "east", "web", port(80, 11000))
					s.Annotations[contract.AnnotationRemoteHostname] = "web-1"
					return s
				}(),
			},
			want: []gateway.Route{{Port: 11000, Namespace: "db", Destinations: []gateway.Destination{{Cluster: "east",
				Target: tunnel.Target{Namespace: "db", Service: "web", Port: 80, Hostname: "web-1"}}}}},
		},
		{
			name: "a host mirror whose hostname was edited routes nothing",
			mirrors: []*corev1.Service{func() *corev1.Service {
				s := mirrorSvc("db", "web-east-web-1", "east", "east", "web", port(80, 11000))
				s.Annotations[contract.AnnotationRemoteHostname] = "web-2"
				return s
			}()},
			problems: []string{"the mirror of web-2 of web from east is named web-east-web-2"},
		},
		{
			name:    "a truncated mirror name routes to the remote name from the annotation",
			mirrors: []*corev1.Service{mirrorSvc("app", contract.MirrorName(long, "east"), "east", "east", long, port(80, 11000))},
			want:    []gateway.Route{{Port: 11000, Namespace: "app", Destinations: dest("east", "app", long, 80)}},
		},
		{
			name:    "services without Ferry's labels are ignored silently",
			mirrors: []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "plain"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port(80, 8080)}}}},
		},
		{
			name:     "link missing or naming another cluster",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-west", "west", "west", "foo", port(80, 11000)), mirrorSvc("app", "foo-north", "east", "north", "foo", port(80, 11001))},
			problems: []string{"link east does not exist or is not for cluster north", "link west does not exist"},
		},
		{
			name:     "a mirror not named after its remote service and cluster",
			mirrors:  []*corev1.Service{mirrorSvc("app", "x", "east", "east", "foo", port(80, 11000))},
			problems: []string{"mirror app/x: the mirror of foo from east is named foo-east"},
		},
		{
			name:     "no remote-service annotation",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "", port(80, 11000))},
			problems: []string{"no ferry.dev/remote-service"},
		},
		{
			// A tenant forges a "mirror" on prod's port, older than it
			// and in a namespace that sorts first: age and order do not
			// matter, only the claim does (issue 11, finding 1).
			name: "a forged mirror cannot take a claimed mirror's port",
			mirrors: []*corev1.Service{
				forged(aged(mirrorSvc("aaa", "evil-east", "east", "east", "evil", port(5432, 11000)), 5*time.Hour)),
				aged(mirrorSvc("prod", "db-east", "east", "east", "db", port(5432, 11000)), 2*time.Hour),
			},
			want:     []gateway.Route{{Port: 11000, Namespace: "prod", Destinations: dest("east", "prod", "db", 5432)}},
			problems: []string{"mirror aaa/evil-east port 5432: egress port 11000 is not claimed for it"},
		},
		{
			// A free port is no better: a Service routes only through a
			// claim, which tenants cannot write.
			name:     "a forged mirror on a free port routes nothing",
			mirrors:  []*corev1.Service{forged(mirrorSvc("aaa", "evil-east", "east", "east", "evil", port(5432, 11007)))},
			problems: []string{"mirror aaa/evil-east port 5432: egress port 11007 is not claimed for it"},
		},
		{
			// The controller deleted the forged mirror, but a finalizer
			// keeps it Terminating. Being older, it used to keep the port
			// (issue 11, finding 1); a Service being deleted routes nothing.
			name: "a Service being deleted routes nothing, however old",
			mirrors: []*corev1.Service{
				forged(deleting(aged(mirrorSvc("aaa", "x", "east", "east", "evil", port(5432, 11000)), 5*time.Hour))),
				aged(mirrorSvc("prod", "db-east", "east", "east", "db", port(5432, 11000)), time.Hour),
				deleting(clustersetSvc("aaa", "evil", "east", port(80, 32000))), // claimed, but going
			},
			want: []gateway.Route{{Port: 11000, Namespace: "prod", Destinations: dest("east", "prod", "db", 5432)}},
		},
		{
			name:     "ports outside the egress range are never opened",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo", port(80, 4143), port(81, 22))},
			problems: []string{`port 80: targetPort "4143" is not an egress port in 10000-31999`, `port 81: targetPort "22"`},
		},
		{
			name:     "an invalid remote service name is refused, not sent",
			mirrors:  []*corev1.Service{mirrorSvc("app", contract.MirrorName("Bad_Name", "east"), "east", "east", "Bad_Name", port(80, 11000))},
			problems: []string{"mirror app/" + contract.MirrorName("Bad_Name", "east") + " port 80"},
		},
		{
			name: "named or out-of-range targetPort and UDP refused",
			mirrors: []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo",
				corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")},
				port(81, 70000),
				corev1.ServicePort{Port: 53, TargetPort: intstr.FromInt32(11005), Protocol: corev1.ProtocolUDP},
			)},
			problems: []string{`port 80: targetPort "http"`, `port 81: targetPort "70000"`, `port 53: targetPort "11005"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := Routes(tc.mirrors, links, claimsOf(links, tc.mirrors, forgedIn(tc.mirrors)...), LocalExports{}, contract.DefaultEgressRange(), contract.DefaultClustersetRange())
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes = %+v, want %+v", got, tc.want)
			}
			checkProblems(t, problems, tc.problems)
		})
	}
}

// ready records a mirror's ready-endpoint count, as the importer does.
func ready(s *corev1.Service, n string) *corev1.Service {
	s.Annotations[contract.AnnotationReadyEndpoints] = n
	return s
}

// localExports is cluster's synced export set of es.
func localExports(cluster string, es ...exports.Export) LocalExports {
	p := exports.NewPublisher()
	m := map[exports.Key]exports.Export{}
	for _, e := range es {
		m[e.Key] = e
	}
	p.Publish(m, nil)
	return LocalExports{Cluster: cluster, Set: p.Current()}
}

// weighted sets the destinations' weights, in order.
func weighted(ds []gateway.Destination, ws ...uint32) []gateway.Destination {
	for i := range ds {
		ds[i].Weight = ws[i]
	}
	return ds
}

// lacks marks a clusterset Service's cluster:port whose mirror has no such
// port (claimsOf then claims none for it).
func lacks(s *corev1.Service, clusterPort string) *corev1.Service {
	s.Annotations["test/lacks"] = clusterPort
	return s
}

// steered records the controller's steering policy on a clusterset Service.
func steered(s *corev1.Service, policy string) *corev1.Service {
	s.Annotations[contract.AnnotationSteering] = policy
	return s
}

func clustersetSvc(ns, svc, clusters string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: contract.ClustersetName(svc),
			Labels:      map[string]string{contract.LabelClusterset: svc},
			Annotations: map[string]string{contract.AnnotationRemoteService: svc, contract.AnnotationClusters: clusters}},
		Spec: corev1.ServiceSpec{Ports: ports},
	}
}

func TestClustersetRoutes(t *testing.T) {
	links := []*ferryv1.Link{link("east", "east", "", ""), link("to-north", "north", "", "")}
	dests := func(ns, svc string, p int, clusters ...string) []gateway.Destination {
		var out []gateway.Destination
		for _, c := range clusters {
			out = append(out, gateway.Destination{Cluster: c, Target: tunnel.Target{Namespace: ns, Service: svc, Port: p}})
		}
		return out
	}
	long := strings.Repeat("l", 60)
	cases := []struct {
		name     string
		svcs     []*corev1.Service
		want     []gateway.Route
		problems []string
		local    LocalExports
	}{
		{
			name: "each port routes to every listed cluster, in the listed order",
			svcs: []*corev1.Service{clustersetSvc("app", "web", "north,east", port(80, 32000), port(443, 32001))},
			want: []gateway.Route{
				{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "north", "east")},
				{Port: 32001, Namespace: "app", Destinations: dests("app", "web", 443, "north", "east")},
			},
		},
		{
			// The union of ports holds 443, which north does not export:
			// its ingress would refuse the stream, so 443 goes to east
			// only. The local cluster exports 80 alone, so it is left out
			// of 443 too; a port no cluster has opens nothing.
			name: "a port goes only to the clusters that export it",
			svcs: []*corev1.Service{
				lacks(clustersetSvc("app", "web", "north,east,west", port(80, 32000), port(443, 32001)), "north:443"),
				lacks(clustersetSvc("app", "api", "north", port(80, 32002), port(8080, 32003)), "north:8080"),
			},
			local: localExports("west", exports.Export{Key: exports.Key{Namespace: "app", Name: "web"}, Ports: []exports.Port{{Protocol: "TCP", Port: 80}, {Protocol: "UDP", Port: 443}}}),
			want: []gateway.Route{
				{Port: 32000, Namespace: "app", Destinations: func() []gateway.Destination {
					ds := dests("app", "web", 80, "north", "east", "west")
					ds[2].Local = true
					return ds
				}()},
				{Port: 32001, Namespace: "app", Destinations: dests("app", "web", 443, "east")},
				{Port: 32002, Namespace: "app", Destinations: dests("app", "api", 80, "north")},
			},
			problems: []string{"clusterset app/api-clusterset port 8080: no cluster it routes to exports that port; not opened"},
		},
		{
			name: "a truncated clusterset name routes to the exported service",
			svcs: []*corev1.Service{clustersetSvc("app", long, "east", port(80, 32000))},
			want: []gateway.Route{{Port: 32000, Namespace: "app", Destinations: dests("app", long, 80, "east")}},
		},
		{
			name: "spaces and repeats in the cluster list are ignored",
			svcs: []*corev1.Service{clustersetSvc("app", "web", " east, east ,,north ", port(80, 32000))},
			want: []gateway.Route{{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east", "north")}},
		},
		{
			name:     "a cluster without a Link is skipped and reported",
			svcs:     []*corev1.Service{clustersetSvc("app", "web", "east,west,north", port(80, 32000))},
			want:     []gateway.Route{{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east", "north")}},
			problems: []string{"clusterset app/web-clusterset: cluster west has no Link; skipped"},
		},
		{
			name:     "no linked cluster: no route",
			svcs:     []*corev1.Service{clustersetSvc("app", "web", "west", port(80, 32000)), clustersetSvc("app", "api", "", port(80, 32001))},
			problems: []string{"app/api-clusterset: no linked cluster", "cluster west has no Link", "app/web-clusterset: no linked cluster"},
		},
		{
			name: "mirrors and clusterset services route side by side",
			svcs: []*corev1.Service{
				mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)),
				clustersetSvc("app", "web", "east,north", port(80, 32000)),
			},
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east", "north")},
			},
		},
		{
			// The default split is one Service's over every cluster's
			// endpoints: each cluster weighs its claimed mirror's count.
			name: "clusters weigh their mirrors' ready endpoints",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				ready(mirrorSvc("app", "web-north", "to-north", "north", "web", port(80, 11001)), "3"),
				clustersetSvc("app", "web", "east,north", port(80, 32000)),
			},
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 11001, Namespace: "app", Destinations: dests("app", "web", 80, "north")},
				{Port: 32000, Namespace: "app", Destinations: weighted(dests("app", "web", 80, "east", "north"), 1, 3)},
			},
		},
		{
			// West exports web itself: it is one of the clusterset's
			// clusters, reached directly, weighted by its own endpoints.
			name: "the local cluster, listed and exporting, is a local destination",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				clustersetSvc("app", "web", "east,west", port(80, 32000)),
			},
			local: localExports("west", exports.Export{Key: exports.Key{Namespace: "app", Name: "web"}, ReadyEndpoints: 2, Ports: []exports.Port{{Protocol: "TCP", Port: 80}}}),
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 32000, Namespace: "app", Destinations: func() []gateway.Destination {
					ds := weighted(dests("app", "web", 80, "east", "west"), 1, 2)
					ds[1].Local = true
					return ds
				}()},
			},
		},
		{
			// The controller's recorded policy: the route's weights
			// replace the counts (a cluster it weighs 0 is left out), and
			// the affinity's tiers order the clusters.
			name: "the steering policy sets weights and tiers",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				ready(mirrorSvc("app", "web-north", "to-north", "north", "web", port(80, 11001)), "3"),
				steered(clustersetSvc("app", "web", "east,north,west", port(80, 32000)), "route=TCPRoute/app/split weights=east:90,west:10 tiers=west"),
			},
			local: localExports("west", exports.Export{Key: exports.Key{Namespace: "app", Name: "web"}, ReadyEndpoints: 2, Ports: []exports.Port{{Protocol: "TCP", Port: 80}}}),
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 11001, Namespace: "app", Destinations: dests("app", "web", 80, "north")},
				{Port: 32000, Namespace: "app", Destinations: func() []gateway.Destination {
					ds := weighted(dests("app", "web", 80, "east", "west"), 90, 10)
					ds[0].Tier, ds[1].Local = 1, true
					return ds
				}()},
			},
		},
		{
			// The annotation is on a Service tenants can write: what does
			// not parse is reported and the default split applies.
			name: "a policy that does not parse leaves the default split",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				ready(mirrorSvc("app", "web-north", "to-north", "north", "web", port(80, 11001)), "3"),
				steered(clustersetSvc("app", "web", "east,north", port(80, 32000)), "weights=east:-5"),
			},
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 11001, Namespace: "app", Destinations: dests("app", "web", 80, "north")},
				{Port: 32000, Namespace: "app", Destinations: weighted(dests("app", "web", 80, "east", "north"), 1, 3)},
			},
			problems: []string{"clusterset app/web-clusterset: ferry.dev/steering: steering policy: weight \"east:-5\""},
		},
		{
			name: "a policy that weighs every reachable cluster 0 routes nothing",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				steered(clustersetSvc("app", "web", "east", port(80, 32000)), "route=TCPRoute/app/x weights=north:5"),
			},
			want:     []gateway.Route{{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")}},
			problems: []string{"clusterset app/web-clusterset: its route weighs every cluster it can reach 0"},
		},
		{
			name: "the local cluster listed but not exporting is skipped",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "1"),
				clustersetSvc("app", "web", "east,west", port(80, 32000)),
			},
			local: localExports("west"),
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 32000, Namespace: "app", Destinations: weighted(dests("app", "web", 80, "east"), 1)},
			},
			problems: []string{"clusterset app/web-clusterset: lists this cluster, which does not export web; skipped"},
		},
		{
			// A count on a Service the claims do not vouch for weighs
			// nothing; the cluster still routes (the claims vouch for its
			// real mirror) and shares evenly with the rest.
			name: "an unclaimed mirror's count weighs nothing",
			svcs: []*corev1.Service{
				ready(mirrorSvc("app", "web-east", "east", "east", "web", port(80, 11000)), "0"),
				forged(ready(mirrorSvc("app", "web-north", "to-north", "north", "web", port(80, 11001)), "1000")),
				clustersetSvc("app", "web", "east,north", port(80, 32000)),
			},
			want: []gateway.Route{
				{Port: 11000, Namespace: "app", Destinations: dests("app", "web", 80, "east")},
				{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east", "north")},
			},
			problems: []string{"mirror app/web-north port 80: egress port 11001 is not claimed for it"},
		},
		{
			name: "ports outside the clusterset range are never opened, mirror range included",
			svcs: []*corev1.Service{clustersetSvc("app", "web", "east", port(80, 11000), port(81, 4143),
				corev1.ServicePort{Port: 82, TargetPort: intstr.FromString("http")},
				corev1.ServicePort{Port: 53, TargetPort: intstr.FromInt32(32005), Protocol: corev1.ProtocolUDP})},
			problems: []string{`port 80: targetPort "11000" is not an egress port in 32000-53999`, `port 81: targetPort "4143"`, `port 82: targetPort "http"`, `port 53: targetPort "32005"`},
		},
		{
			name: "a mirror cannot use a clusterset port",
			svcs: []*corev1.Service{
				clustersetSvc("app", "web", "east", port(80, 32000)),
				mirrorSvc("app", "web-east", "east", "east", "web", port(80, 32000)),
			},
			want:     []gateway.Route{{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east")}},
			problems: []string{`mirror app/web-east port 80: targetPort "32000" is not an egress port in 10000-31999`},
		},
		{
			name: "a forged clusterset service cannot take a claimed one's port",
			svcs: []*corev1.Service{
				// The tenant's namespace really imports evil from east.
				mirrorSvc("aaa", "evil-east", "east", "east", "evil", port(80, 11000)),
				forged(aged(clustersetSvc("aaa", "evil", "east", port(80, 32000)), 5*time.Hour)),
				aged(clustersetSvc("prod", "db", "east,north", port(5432, 32000)), 2*time.Hour),
			},
			want: []gateway.Route{
				{Port: 11000, Namespace: "aaa", Destinations: dests("aaa", "evil", 80, "east")},
				{Port: 32000, Namespace: "prod", Destinations: dests("prod", "db", 5432, "east", "north")},
			},
			problems: []string{"clusterset aaa/evil-clusterset port 80: egress port 32000 is not claimed for it"},
		},
		{
			// The cluster list is an annotation anyone may write: it can
			// name only clusters whose Link imports the service.
			name: "a listed cluster without a claimed mirror of the service is skipped",
			svcs: func() []*corev1.Service {
				cs := clustersetSvc("app", "web", "east,north", port(80, 32000))
				cs.Annotations["test/unvouched"] = "north"
				return []*corev1.Service{cs}
			}(),
			want:     []gateway.Route{{Port: 32000, Namespace: "app", Destinations: dests("app", "web", 80, "east")}},
			problems: []string{"clusterset app/web-clusterset: cluster north has no claimed mirror of web; skipped"},
		},
		{
			name: "broken contract refused",
			svcs: func() []*corev1.Service {
				noAnno := clustersetSvc("a", "web", "east", port(80, 32000))
				delete(noAnno.Annotations, contract.AnnotationRemoteService)
				mismatch := clustersetSvc("b", "web", "east", port(80, 32001))
				mismatch.Annotations[contract.AnnotationRemoteService] = "other"
				misnamed := clustersetSvc("c", "web", "east", port(80, 32002))
				misnamed.Name = "web"
				both := clustersetSvc("d", "web", "east", port(80, 32003))
				both.Labels[contract.LabelLink], both.Labels[contract.LabelSourceCluster] = "east", "east"
				empty := clustersetSvc("e", "web", "east", port(80, 32004))
				empty.Labels[contract.LabelClusterset] = ""
				bad := clustersetSvc("f", "Bad_Name", "east", port(80, 32005))
				bad.Name = contract.ClustersetName("Bad_Name")
				return []*corev1.Service{noAnno, mismatch, misnamed, both, empty, bad}
			}(),
			problems: []string{
				"clusterset a/web-clusterset: no ferry.dev/remote-service",
				`clusterset b/web-clusterset: ferry.dev/remote-service "other" does not match`,
				"clusterset c/web: the clusterset Service of web is named web-clusterset",
				"clusterset d/web-clusterset: carries both",
				"clusterset e/web-clusterset: empty ferry.dev/clusterset label",
				"clusterset f/Bad_Name-clusterset port 80",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := Routes(tc.svcs, links, claimsOf(links, tc.svcs, forgedIn(tc.svcs)...), tc.local, contract.DefaultEgressRange(), contract.DefaultClustersetRange())
			// Every port a clusterset Service holds is a clusterset route.
			for i := range tc.want {
				tc.want[i].Clusterset = contract.DefaultClustersetRange().Contains(int32(tc.want[i].Port))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes = %+v, want %+v", got, tc.want)
			}
			checkProblems(t, problems, tc.problems)
		})
	}
}

func checkProblems(t *testing.T, got []error, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems = %v, want %d matching %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i].Error(), w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
	}
}
