package gatewayd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/identity"
)

// Defaults of the daemon's own settings; the data-plane limits are in
// gateway.Limits, the ports and names in internal/contract.
var (
	DefaultListenAddr = fmt.Sprintf(":%d", contract.IngressPort)
	DefaultAdminAddr  = fmt.Sprintf(":%d", contract.GatewayAdminPort)
)

const (
	// DefaultClientQPS is low on purpose: the gateway only reads (watches),
	// so it needs QPS for the initial lists and nothing after.
	DefaultClientQPS   = 50
	DefaultClientBurst = 100
)

// Options are ferry-gateway's settings, parsed from flags by its main.
type Options struct {
	ClusterName string
	MeshDomain  string
	// Namespace holds Ferry's objects: the certificate Secret and Links.
	Namespace  string
	CertSecret string
	// ListenAddr is the ingress (mTLS) address: the only one other clusters reach.
	ListenAddr string
	// AdminAddr serves /live, /ready and /metrics.
	AdminAddr string
	// PprofAddr, host:port, serves runtime profiles (internal/profiling);
	// empty, the default, serves none.
	PprofAddr string
	// EgressHost is the address egress ports bind to, normally the pod IP
	// (POD_IP); empty binds all interfaces.
	EgressHost string
	// EgressPorts is the range the controller allocates egress ports from;
	// the gateway opens no port outside it.
	EgressPorts contract.Range
	// ClustersetPorts is the range the controller allocates clusterset
	// Services' egress ports from; disjoint from EgressPorts.
	ClustersetPorts contract.Range
	// EgressCallers is what egress does with a caller that may not use a
	// port (docs/contracts.md, "Egress callers"): enforce (default) or
	// audit.
	EgressCallers gateway.CallerMode
	// EgressHostCallers are addresses that are no pod's (nodes, hostNetwork
	// pods, hosts outside the cluster) but may still use every egress port.
	// Empty by default: such callers are refused.
	EgressHostCallers []netip.Prefix
	Limits            gateway.Limits
	// RestConfig reaches this cluster's own API server.
	RestConfig *rest.Config
	Logger     *slog.Logger
}

// Default sets every unset field to its default, Limits included: the one
// defaulting step, taken by Run.
func (o *Options) Default() {
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	if o.Namespace == "" {
		o.Namespace = contract.SystemNamespace
	}
	if o.CertSecret == "" {
		o.CertSecret = contract.GatewayTLSSecret
	}
	if o.ListenAddr == "" {
		o.ListenAddr = DefaultListenAddr
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.EgressPorts == (contract.Range{}) {
		o.EgressPorts = contract.DefaultEgressRange()
	}
	if o.ClustersetPorts == (contract.Range{}) {
		o.ClustersetPorts = contract.DefaultClustersetRange()
	}
	if o.EgressCallers == "" {
		o.EgressCallers = gateway.CallerEnforce
	}
	o.Limits.Default()
}

// Validate reports every problem at once, each saying which flag to fix. It
// changes nothing.
func (o Options) Validate() error {
	var errs []error
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
	}
	if err := identity.ValidateMeshDomain(o.MeshDomain); err != nil {
		errs = append(errs, fmt.Errorf("--mesh-domain: %w", err))
	}
	for flag, addr := range map[string]string{"--ingress-addr": o.ListenAddr, "--admin-addr": o.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", flag, addr, err))
		}
	}
	if o.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(o.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("--pprof-addr %q: %w", o.PprofAddr, err))
		}
	}
	if o.EgressHost != "" && net.ParseIP(o.EgressHost) == nil {
		errs = append(errs, fmt.Errorf("egress host (POD_IP) %q is not an IP address", o.EgressHost))
	}
	for flag, r := range map[string]contract.Range{"--egress-port-range": o.EgressPorts, "--clusterset-port-range": o.ClustersetPorts} {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if o.EgressPorts.Overlaps(o.ClustersetPorts) {
		errs = append(errs, fmt.Errorf("--clusterset-port-range %s overlaps --egress-port-range %s: the two allocators would hand out the same ports", o.ClustersetPorts, o.EgressPorts))
	}
	if err := o.EgressCallers.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--egress-callers: %w", err))
	}
	for _, p := range o.EgressHostCallers {
		if !p.IsValid() || p != p.Masked() {
			errs = append(errs, fmt.Errorf("--egress-host-callers: %s is not a network address with its prefix length (e.g. %s)", p, p.Masked()))
		}
	}
	if err := o.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.RestConfig == nil {
		errs = append(errs, errors.New("no Kubernetes client configuration (--kubeconfig, or run in a pod)"))
	}
	return errors.Join(errs...)
}
