package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	mirrorsvc "ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
)

func newTrafficCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "traffic NAME",
		Short: "Show how a clusterset service splits new connections over its clusters",
		Long: `Show, for the clusterset service NAME in the namespace of -n (the
ServiceImport NAME and its Service NAME-clusterset), each cluster that serves
it and how new connections are split:

  TIER        the affinity's order (ServiceImport annotation ferry.dev/affinity):
              the lowest tier with a ready cluster takes every new connection
  CONFIGURED  the weight of the accepted route (TCPRoute or HTTPRoute whose
              parent is the ServiceImport), "-" without one
  READY       ready endpoints there (the exporting cluster's count, from its feed)
  HEALTHY     the Link's GatewayHealthy (always True for this cluster)
  EFFECTIVE   the weight after the route, readiness and health
  EXPECTED    the share of new connections that follows from the weights
  OBSERVED    the share the gateways saw over the last minute, and the count

The gateways also eject a cluster for a while after a failed attempt;
OBSERVED shows the result.`,
		Example: `  ferry --context west -n shop traffic cart
  ferry --context west -n shop traffic cart -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("`ferry traffic` takes one argument, the imported service's name (its ServiceImport), got %d: e.g. `ferry -n shop traffic cart`", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			rep, err := readTraffic(cmd.Context(), k, args[0])
			if err != nil {
				return err
			}
			return printValue(cmd.OutOrStdout(), *output, rep, func(w io.Writer) error { return printTrafficTable(w, rep) })
		},
	}
	output = addOutputFlag(cmd, outputTable, append([]string{outputTable}, structuredFormats...)...)
	return cmd
}

// trafficReport is `ferry traffic -o json|yaml`.
type trafficReport struct {
	Service       string   `json:"service"`
	ClustersetIPs []string `json:"clustersetIPs"`
	Ports         []int32  `json:"ports"`
	Affinity      string   `json:"affinity"`
	AffinityError string   `json:"affinityError,omitempty"`
	// Policy is what the controller recorded on the clusterset Service
	// (ferry.dev/steering); empty is the default.
	Policy   string           `json:"policy"`
	Routes   []routeReport    `json:"routes"`
	Clusters []clusterTraffic `json:"clusters"`
	// ObservedNote says why observed figures are missing or partial.
	ObservedNote string `json:"observedNote,omitempty"`
}

type routeReport struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Accepted string `json:"accepted"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
}

type clusterTraffic struct {
	Cluster string `json:"cluster"`
	Local   bool   `json:"local"`
	Tier    int    `json:"tier"`
	// ConfiguredWeight is the route's weight; absent without a route.
	ConfiguredWeight *int64  `json:"configuredWeight,omitempty"`
	ReadyEndpoints   uint32  `json:"readyEndpoints"`
	Healthy          string  `json:"healthy"`
	EffectiveWeight  uint32  `json:"effectiveWeight"`
	ExpectedShare    float64 `json:"expectedShare"`
	// ObservedConnections over the last minute, summed over the gateway
	// pods, and their share; absent when the gateways could not be read.
	ObservedConnections *float64 `json:"observedConnections,omitempty"`
	ObservedShare       *float64 `json:"observedShare,omitempty"`
}

func readTraffic(ctx context.Context, k *kubeTarget, name string) (*trafficReport, error) {
	ns := k.Namespace
	rep := &trafficReport{Service: ns + "/" + name}
	var si mcsv1beta1.ServiceImport
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &si); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no ServiceImport %s/%s in context %q: %s is not imported here (check -n; `ferry links` shows the Links, `kubectl get serviceimports -A` the imports)", ns, name, k.Context, name)
		}
		return nil, k.explain("get ServiceImport "+ns+"/"+name, err)
	}
	var svc corev1.Service
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.ClustersetName(name)}, &svc); err != nil {
		return nil, k.explain("get the clusterset Service "+ns+"/"+contract.ClustersetName(name), err)
	}
	rep.ClustersetIPs = si.Spec.IPs
	for _, p := range si.Spec.Ports {
		rep.Ports = append(rep.Ports, p.Port)
	}
	rep.Affinity = steering.AffinityNone
	if a := si.Annotations[contract.AnnotationAffinity]; a != "" {
		rep.Affinity = a
		if _, err := steering.ParseAffinity(a); err != nil {
			rep.AffinityError = err.Error()
		}
	}
	rep.Policy = svc.Annotations[contract.AnnotationSteering]
	policy, err := steering.ParsePolicy(rep.Policy)
	if err != nil {
		rep.AffinityError = strings.TrimSpace(rep.AffinityError + "; recorded policy: " + err.Error())
	}
	routes, err := routesOf(ctx, k, ns, name)
	if err != nil {
		return nil, err
	}
	rep.Routes = routes

	healthy, err := linkHealth(ctx, k)
	if err != nil {
		return nil, err
	}
	self := localClusterName(ctx, k)
	var clusters []steering.Cluster
	local := map[string]bool{}
	for _, c := range si.Status.Clusters {
		if c.Cluster == self {
			n, err := localReady(ctx, k, ns, name)
			if err != nil {
				return nil, err
			}
			local[c.Cluster] = true
			clusters = append(clusters, steering.Cluster{Name: c.Cluster, Ready: n})
			continue
		}
		var m corev1.Service
		err := k.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.MirrorName(name, c.Cluster)}, &m)
		switch {
		case err == nil:
			n, _, _ := mirrorsvc.ReadyEndpoints(&m)
			clusters = append(clusters, steering.Cluster{Name: c.Cluster, Ready: uint32(max(n, 0))})
		case apierrors.IsNotFound(err):
			// Listed but not mirrored (yet, or any more): nothing to count.
			clusters = append(clusters, steering.Cluster{Name: c.Cluster})
		default:
			return nil, k.explain("get mirror "+contract.MirrorName(name, c.Cluster), err)
		}
	}
	shares := steering.Apply(policy, clusters)
	for i := range shares {
		h := healthy[shares[i].Cluster]
		if local[shares[i].Cluster] {
			h = "True"
		}
		if h != "True" {
			shares[i].Weight = 0
		}
	}
	expected := steering.Expected(shares)
	for i, s := range shares {
		ct := clusterTraffic{
			Cluster: s.Cluster, Local: local[s.Cluster], Tier: s.Tier, ReadyEndpoints: clusters[i].Ready,
			Healthy: cmpOr(healthy[s.Cluster], "Unknown"), EffectiveWeight: s.Weight, ExpectedShare: expected[i],
		}
		if ct.Local {
			ct.Healthy = "True"
		}
		if s.Configured >= 0 {
			ct.ConfiguredWeight = ptr.To(s.Configured)
		}
		rep.Clusters = append(rep.Clusters, ct)
	}
	observe(ctx, k, rep)
	return rep, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// routesOf lists the routes that name the ServiceImport, with Ferry's
// verdict. A cluster without the Gateway API CRDs has none.
func routesOf(ctx context.Context, k *kubeTarget, ns, name string) ([]routeReport, error) {
	var out []routeReport
	add := func(kind, rname string, parents []gwv1.RouteParentStatus) {
		for _, p := range parents {
			if string(p.ControllerName) != contract.GatewayControllerName || string(p.ParentRef.Name) != name {
				continue
			}
			r := routeReport{Kind: kind, Name: rname, Accepted: "Unknown"}
			if c := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted)); c != nil {
				r.Accepted, r.Reason, r.Message = string(c.Status), c.Reason, c.Message
			}
			out = append(out, r)
		}
	}
	var tcp gwv1.TCPRouteList
	if err := k.Client.List(ctx, &tcp, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) {
		return nil, k.explain("list TCPRoutes", err)
	}
	for _, r := range tcp.Items {
		add(steering.KindTCPRoute, r.Name, r.Status.Parents)
	}
	var http gwv1.HTTPRouteList
	if err := k.Client.List(ctx, &http, client.InNamespace(ns)); err != nil && !meta.IsNoMatchError(err) {
		return nil, k.explain("list HTTPRoutes", err)
	}
	for _, r := range http.Items {
		add(steering.KindHTTPRoute, r.Name, r.Status.Parents)
	}
	return out, nil
}

// linkHealth maps each linked cluster to its Link's GatewayHealthy status.
func linkHealth(ctx context.Context, k *kubeTarget) (map[string]string, error) {
	links, err := getLinks(ctx, k)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range links {
		out[links[i].Spec.ClusterName] = conditionStatus(&links[i], ferryv1.LinkGatewayHealthy)
	}
	return out, nil
}

// localClusterName is this cluster's name, from the identity its gateway
// Service publishes; "" when it cannot be read.
func localClusterName(ctx context.Context, k *kubeTarget) string {
	var gw corev1.Service
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}, &gw); err != nil {
		return ""
	}
	id, err := identity.ParseIDInferMesh(gw.Annotations[contract.AnnotationGatewayIdentity])
	if err != nil {
		return ""
	}
	return id.Cluster
}

// localReady counts the ready endpoints of this cluster's own Service, as
// its export publishes them.
func localReady(ctx context.Context, k *kubeTarget, ns, name string) (uint32, error) {
	var slices discoveryv1.EndpointSliceList
	if err := k.Client.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
		return 0, k.explain("list the EndpointSlices of "+ns+"/"+name, err)
	}
	// One endpoint per pod: a dual-stack Service has a slice per family,
	// so count IPv4 endpoints, or IPv6 when there are none.
	var v4, v6 uint32
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if !ptr.Deref(ep.Conditions.Ready, true) {
				continue
			}
			if s.AddressType == discoveryv1.AddressTypeIPv6 {
				v6++
			} else {
				v4++
			}
		}
	}
	if v4 > 0 {
		return v4, nil
	}
	return v6, nil
}

// observe fills the observed figures from the gateways' last-minute gauge.
func observe(ctx context.Context, k *kubeTarget, rep *trafficReport) {
	cs, err := kubernetes.NewForConfig(k.Config)
	if err != nil {
		rep.ObservedNote = err.Error()
		return
	}
	pods, err := scrapeComponent(ctx, cs, contract.GatewayName, contract.GatewayAdminPort)
	if err != nil {
		rep.ObservedNote = "gateway metrics: " + err.Error()
		if len(pods) == 0 {
			return
		}
	}
	seen := map[string]float64{}
	for _, p := range pods {
		for _, m := range p.fams["ferry_gateway_clusterset_connections_last_minute"].GetMetric() {
			if label(m, "service") == rep.Service {
				seen[label(m, "cluster")] += m.GetGauge().GetValue()
			}
		}
	}
	var total float64
	for _, v := range seen {
		total += v
	}
	for i := range rep.Clusters {
		n := seen[rep.Clusters[i].Cluster]
		rep.Clusters[i].ObservedConnections = ptr.To(n)
		if total > 0 {
			rep.Clusters[i].ObservedShare = ptr.To(n / total)
		}
	}
}

func printTrafficTable(w io.Writer, rep *trafficReport) error {
	ports := make([]string, len(rep.Ports))
	for i, p := range rep.Ports {
		ports[i] = strconv.Itoa(int(p))
	}
	policy := "the default split (by ready endpoints)"
	if i := slices.IndexFunc(rep.Routes, func(r routeReport) bool { return r.Accepted == "True" }); i >= 0 {
		policy = fmt.Sprintf("%s %s", rep.Routes[i].Kind, rep.Routes[i].Name)
	}
	fmt.Fprintf(w, "%s: clusterset IP %s, ports %s; affinity %s; weights from %s\n",
		rep.Service, strings.Join(rep.ClustersetIPs, ","), strings.Join(ports, ","), rep.Affinity, policy)
	if rep.AffinityError != "" {
		fmt.Fprintf(w, "  affinity not applied: %s\n", rep.AffinityError)
	}
	for _, r := range rep.Routes {
		if r.Accepted != "True" {
			fmt.Fprintf(w, "  %s %s not accepted (%s): %s\n", r.Kind, r.Name, r.Reason, r.Message)
		}
	}
	var cells [][]string
	for _, c := range rep.Clusters {
		name := c.Cluster
		if c.Local {
			name += " (this cluster)"
		}
		configured := "-"
		if c.ConfiguredWeight != nil {
			configured = strconv.FormatInt(*c.ConfiguredWeight, 10)
		}
		observed := "-"
		if c.ObservedConnections != nil {
			observed = fmt.Sprintf("(%.0f)", *c.ObservedConnections)
			if c.ObservedShare != nil {
				observed = fmt.Sprintf("%.1f%% %s", 100**c.ObservedShare, observed)
			}
		}
		cells = append(cells, []string{name, strconv.Itoa(c.Tier), configured, fmt.Sprint(c.ReadyEndpoints), c.Healthy,
			fmt.Sprint(c.EffectiveWeight), fmt.Sprintf("%.1f%%", 100*c.ExpectedShare), observed})
	}
	if err := printTable(w, []string{"cluster", "tier", "configured", "ready", "healthy", "effective", "expected", "observed (1 min)"}, cells); err != nil {
		return err
	}
	if rep.ObservedNote != "" {
		fmt.Fprintf(w, "observed figures incomplete: %s\n", rep.ObservedNote)
	}
	return nil
}
