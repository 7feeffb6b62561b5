package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
)

func newGatewaysCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "gateways",
		Short: "Show the local gateway's replicas and readiness, and each remote gateway's health",
		Long: `Show this cluster's gateway (its Service, address, Deployment replicas and
ready endpoints) and, for each Link, whether the remote gateway is alive
(the GatewayHealthy condition the controller's probes maintain), since when,
and the age of the imported data.

Health comes from status objects (Service, EndpointSlices, Deployment, Link
status): what the controller acts on. The figures only the daemons know --
probe latency p50/p99, live tunnel sessions and connections carried per
remote -- are read from the gateway and controller pods' /metrics through the
API server's pod proxy (RBAC: get pods/proxy in ferry-system); where that is
not possible they print "-" and a note says why.`,
		Example: `  ferry --context west gateways
  ferry --context west gateways -o wide
  ferry --context west gateways -o json
  ferry --context west gateways -o jsonpath='{.local.readyEndpoints}/{.local.endpoints}'`,
		Args: noArgs("gateways"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			local, err := readLocalGateway(ctx, k)
			if err != nil {
				return err
			}
			links, err := getLinks(ctx, k)
			if err != nil && !meta.IsNoMatchError(err) {
				return err
			}
			now := time.Now()
			report := gatewaysReport{Context: k.Context, Local: local, Remotes: []remoteGateway{}}
			live := readLiveFigures(ctx, k)
			for i := range links {
				report.Remotes = append(report.Remotes, live.apply(summarizeRemote(&links[i], now)))
			}
			if len(links) > 0 && live.note != "" {
				report.Note = "live figures (probe latency, tunnels, streams) unavailable: " + live.note
			}
			return printout{
				value: report,
				table: func(w io.Writer) error { return printGateways(w, report, false) },
				wide:  func(w io.Writer) error { return printGateways(w, report, true) },
				names: report.objects(),
			}.print(cmd.OutOrStdout(), *output)
		},
	}
	output = addOutputFlag(cmd, outputTable, append([]string{outputTable, outputWide, outputName}, structuredFormats...)...)
	return cmd
}

type gatewaysReport struct {
	Context string          `json:"context"`
	Local   localGateway    `json:"local"`
	Remotes []remoteGateway `json:"remotes"`
	// Note says why live figures are missing, if they are.
	Note string `json:"note,omitempty"`
}

// localGateway is this cluster's gateway as its status objects show it.
type localGateway struct {
	Installed bool     `json:"installed"`
	Service   string   `json:"service"`
	Type      string   `json:"type,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	// Replicas and ReadyReplicas come from the Deployment, when there is one
	// (the daemons may also run as plain processes, as in tests).
	Deployment    bool  `json:"deployment"`
	Replicas      int32 `json:"replicas,omitempty"`
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Endpoints are the pods the Service routes to; only ready ones carry
	// traffic, and the controller points mirrors at them.
	Endpoints      int      `json:"endpoints"`
	ReadyEndpoints int      `json:"readyEndpoints"`
	ReadyAddresses []string `json:"readyAddresses,omitempty"`
	// Pods are the Service's endpoints, ready or not, with the node each
	// runs on: where to look (kubectl logs, node events) when one is not.
	Pods []gatewayPod `json:"pods,omitempty"`
	// Image is the gateway container's image in the Deployment: the
	// version the cluster runs.
	Image string `json:"image,omitempty"`
}

// gatewayPod is one endpoint of the gateway Service.
type gatewayPod struct {
	IP    string `json:"ip"`
	Node  string `json:"node,omitempty"`
	Ready bool   `json:"ready"`
}

// remoteGateway is one Link's remote gateway as Link status shows it.
type remoteGateway struct {
	Link    string `json:"link"`
	Cluster string `json:"cluster"`
	Gateway string `json:"gateway"`
	// Addresses are all of the Link's gateway addresses, tried in order;
	// Gateway shows the first.
	Addresses []string `json:"addresses"`
	Identity  string   `json:"identity"`
	// Alive is the GatewayHealthy condition: True, False or Unknown.
	Alive       string `json:"alive"`
	AliveSince  string `json:"aliveSince"`
	Reason      string `json:"reason,omitempty"`
	LastSyncAge string `json:"lastSyncAge"`
	// ProbeLatencyP50/P99 come from the controller's probe histogram, and
	// Tunnels (live sessions) and Streams (connections carried) from the
	// gateway pods' metrics; "-" when those cannot be read.
	ProbeLatencyP50 string `json:"probeLatencyP50"`
	ProbeLatencyP99 string `json:"probeLatencyP99"`
	Tunnels         string `json:"tunnels"`
	Streams         string `json:"streams"`
	Message         string `json:"message,omitempty"`
}

func readLocalGateway(ctx context.Context, k *kubeTarget) (localGateway, error) {
	g := localGateway{Service: contract.SystemNamespace + "/" + contract.GatewayName}
	var svc corev1.Service
	err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}, &svc)
	switch {
	case apierrors.IsNotFound(err):
		return g, nil
	case err != nil:
		return g, k.explain("get Service "+g.Service, err)
	}
	g.Installed = true
	g.Type = string(svc.Spec.Type)
	g.Addresses = serviceAddresses(&svc)
	var d appsv1.Deployment
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}, &d); err == nil {
		g.Deployment = true
		g.Replicas = d.Status.Replicas
		if d.Spec.Replicas != nil {
			g.Replicas = *d.Spec.Replicas
		}
		g.ReadyReplicas = d.Status.ReadyReplicas
		g.Image = containerImage(&d, contract.GatewayName)
	} else if !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return g, k.explain("get Deployment "+g.Service, err)
	}
	g.Pods, err = gatewayEndpoints(ctx, k)
	g.Endpoints = len(g.Pods)
	for _, p := range g.Pods {
		if p.Ready {
			g.ReadyAddresses = append(g.ReadyAddresses, p.IP)
		}
	}
	g.ReadyEndpoints = len(g.ReadyAddresses)
	return g, err
}

// gatewayEndpoints lists the endpoints of the gateway Service's
// EndpointSlices. A nil Ready means "unknown", which the EndpointSlice API
// says consumers must treat as ready; an endpoint without an address cannot
// carry traffic, so it is never ready.
func gatewayEndpoints(ctx context.Context, k *kubeTarget) ([]gatewayPod, error) {
	var sliceList discoveryv1.EndpointSliceList
	if err := k.Client.List(ctx, &sliceList, client.InNamespace(contract.SystemNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: contract.GatewayName}); err != nil {
		return nil, k.explain("list the gateway's EndpointSlices", err)
	}
	var out []gatewayPod
	for _, s := range sliceList.Items {
		for _, e := range s.Endpoints {
			p := gatewayPod{Ready: (e.Conditions.Ready == nil || *e.Conditions.Ready) && len(e.Addresses) > 0}
			if len(e.Addresses) > 0 {
				p.IP = e.Addresses[0]
			}
			if e.NodeName != nil {
				p.Node = *e.NodeName
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// containerImage is the image of the named container, else of the first.
func containerImage(d *appsv1.Deployment, name string) string {
	cs := d.Spec.Template.Spec.Containers
	for _, c := range cs {
		if c.Name == name {
			return c.Image
		}
	}
	if len(cs) > 0 {
		return cs[0].Image
	}
	return ""
}

// objects are what the report shows, for -o name: the gateway Service and
// the Link behind each remote gateway.
func (r gatewaysReport) objects() []runtime.Object {
	out := []runtime.Object{}
	if r.Local.Installed {
		out = append(out, objectRef(corev1.SchemeGroupVersion.WithKind("Service"), contract.SystemNamespace, contract.GatewayName))
	}
	for _, g := range r.Remotes {
		out = append(out, objectRef(ferryv1.GroupVersion.WithKind("Link"), contract.SystemNamespace, g.Link))
	}
	return out
}

// serviceAddresses is where other clusters reach the gateway, by Service
// type: load-balancer addresses, node ports, or (ClusterIP) nothing public.
func serviceAddresses(svc *corev1.Service) []string {
	var port int32 = contract.IngressPort
	var nodePort int32
	for _, p := range svc.Spec.Ports {
		if p.Name == "ingress" {
			port, nodePort = p.Port, p.NodePort
		}
	}
	var out []string
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		for _, in := range svc.Status.LoadBalancer.Ingress {
			h := in.IP
			if h == "" {
				h = in.Hostname
			}
			if h != "" {
				out = append(out, net.JoinHostPort(h, strconv.Itoa(int(port))))
			}
		}
	case corev1.ServiceTypeNodePort:
		if nodePort != 0 {
			out = append(out, "<node>:"+strconv.Itoa(int(nodePort)))
		}
	}
	return out
}

func summarizeRemote(l *ferryv1.Link, now time.Time) remoteGateway {
	r := remoteGateway{
		Link: l.Name, Cluster: l.Spec.ClusterName, Gateway: firstAddress(l.Spec.GatewayAddresses), Addresses: l.Spec.GatewayAddresses,
		Identity: l.Spec.GatewayIdentity, Alive: conditionStatus(l, ferryv1.LinkGatewayHealthy), AliveSince: "-",
		LastSyncAge: age(l.Status.LastSyncTime, now), ProbeLatencyP50: "-", ProbeLatencyP99: "-",
		Tunnels: "-", Streams: "-",
	}
	if c := meta.FindStatusCondition(l.Status.Conditions, ferryv1.LinkGatewayHealthy); c != nil {
		r.AliveSince = age(&c.LastTransitionTime, now)
		r.Reason = c.Reason
		if c.Status != "True" {
			r.Message = c.Message
		}
	} else {
		r.Message = linkMessage(l)
	}
	if l.DeletionTimestamp != nil {
		r.Message = linkMessage(l)
	}
	return r
}

// printGateways writes both tables; wide adds the gateway pods (IP, ready,
// node) and image, and per remote every address, the identity, the
// condition's reason and the whole message.
func printGateways(w io.Writer, r gatewaysReport, wide bool) error {
	fmt.Fprintf(w, "LOCAL GATEWAY (context %q)\n", r.Context)
	l := r.Local
	if !l.Installed {
		fmt.Fprintf(w, "not installed: no Service %s (ferry install ... | kubectl apply -f -)\n", l.Service)
	} else {
		replicas := "-"
		if l.Deployment {
			replicas = fmt.Sprintf("%d/%d", l.ReadyReplicas, l.Replicas)
		}
		header := []string{"service", "type", "address", "replicas", "ready endpoints"}
		row := []string{l.Service, l.Type, orDash(strings.Join(l.Addresses, ",")), replicas, fmt.Sprintf("%d/%d", l.ReadyEndpoints, l.Endpoints)}
		if wide {
			header = append(header, "pod ips", "nodes", "image")
			ips, nodes := podColumns(l.Pods)
			row = append(row, ips, nodes, orDash(l.Image))
		}
		if err := printTable(w, header, [][]string{row}); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nREMOTE GATEWAYS")
	if len(r.Remotes) == 0 {
		_, err := fmt.Fprintln(w, "none: this cluster has no Links")
		return err
	}
	header := []string{"link", "cluster", "gateway", "alive", "since", "last sync", "probe p50/p99", "tunnels", "streams", "message"}
	if wide {
		header = slices.Insert(header, len(header)-1, "reason", "gateways", "identity")
	}
	var rows [][]string
	for _, g := range r.Remotes {
		row := []string{g.Link, g.Cluster, g.Gateway, g.Alive, g.AliveSince, g.LastSyncAge,
			g.ProbeLatencyP50 + "/" + g.ProbeLatencyP99, g.Tunnels, g.Streams}
		if wide {
			row = append(row, orDash(g.Reason), orDash(strings.Join(g.Addresses, ",")), orDash(g.Identity), oneLineMessage(g.Message))
		} else {
			row = append(row, clipMessage(g.Message))
		}
		rows = append(rows, row)
	}
	if err := printTable(w, header, rows); err != nil {
		return err
	}
	if r.Note != "" {
		_, err := fmt.Fprintln(w, "\nnote: "+r.Note)
		return err
	}
	return nil
}

// podColumns are the wide POD IPS (a not-ready one marked so) and NODES
// (each once, in order) cells.
func podColumns(pods []gatewayPod) (ips, nodes string) {
	var is, ns []string
	for _, p := range pods {
		ip := orDash(p.IP)
		if !p.Ready {
			ip += "(not ready)"
		}
		is = append(is, ip)
		if p.Node != "" && !slices.Contains(ns, p.Node) {
			ns = append(ns, p.Node)
		}
	}
	return orDash(strings.Join(is, ",")), orDash(strings.Join(ns, ","))
}
