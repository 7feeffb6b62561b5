package controllerd

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/importer"
)

// Defaults; the ports and names are internal/contract's.
const DefaultGatewayService = contract.SystemNamespace + "/" + contract.GatewayName

// DefaultAdminAddr serves /live, /ready and /metrics.
var DefaultAdminAddr = fmt.Sprintf(":%d", contract.ControllerAdminPort)

// Registry is where metrics go and are served from.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Options configure the controller. cmd/ferry-controller fills the first
// group from flags; the second group is for tests and embedding.
type Options struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster.
	Kubeconfig  string
	ClusterName string
	MeshDomain  string
	// EgressPortRange is "min-max".
	EgressPortRange string
	// ClustersetPortRange is "min-max", the clusterset Services' egress
	// ports; it must not overlap EgressPortRange.
	ClustersetPortRange string
	// GatewayService is "namespace/name" of the local gateway Service.
	GatewayService string
	LeaderElect    bool
	// MetricsAddr and HealthAddr are host:port; equal addresses share one
	// server, and "0" turns a server off.
	MetricsAddr, HealthAddr string
	// TLSDir, if set, holds the controller's own identity (tls.crt chain,
	// tls.key, ca.crt trust bundle), reloaded when the files change: for
	// development and for installs that issue certificates elsewhere. When
	// empty the in-process issuer issues it from IssuerSecret.
	TLSDir       string
	IssuerSecret string
	// QPS and Burst limit the client (see importer.DefaultQPS).
	QPS    float32
	Burst  int
	Logger *slog.Logger

	// RestConfig, if set, is used instead of Kubeconfig.
	RestConfig *rest.Config
	// Registry defaults to controller-runtime's global registry, which
	// also carries the manager's own metrics.
	Registry Registry
	// Feed defaults to the gRPC feed client (internal/feed).
	Feed importer.FeedDialer
	// Prober defaults to a TLS handshake with the remote gateway.
	Prober importer.Prober
	// Hooks add components to the manager before it starts.
	Hooks []Hook
	// SkipNameValidation lets tests run the controller twice in a process.
	SkipNameValidation bool

	ports           contract.Range
	clustersetPorts contract.Range
	gateway         types.NamespacedName
}

// Deps is what a Hook receives.
type Deps struct {
	Manager manager.Manager
	// Identity is the controller's own identity, as the importer uses it.
	Identity *identity.Source
	Options  *Options
	Logger   *slog.Logger
}

// Hook adds a component (a manager.Runnable, a controller) to the manager.
type Hook func(Deps) error

// SetDefaults fills zero fields with their defaults.
func (o *Options) SetDefaults() {
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	if o.EgressPortRange == "" {
		o.EgressPortRange = contract.DefaultEgressRange().String()
	}
	if o.ClustersetPortRange == "" {
		o.ClustersetPortRange = contract.DefaultClustersetRange().String()
	}
	if o.GatewayService == "" {
		o.GatewayService = DefaultGatewayService
	}
	if o.IssuerSecret == "" {
		o.IssuerSecret = contract.IssuerSecret
	}
	if o.QPS == 0 {
		o.QPS = importer.DefaultQPS
	}
	if o.Burst == 0 {
		o.Burst = importer.DefaultBurst
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate applies defaults and checks every option, reporting all
// problems at once.
func (o *Options) Validate() error {
	o.SetDefaults()
	var errs []error
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
	}
	if err := identity.ValidateMeshDomain(o.MeshDomain); err != nil {
		errs = append(errs, fmt.Errorf("--mesh-domain: %w", err))
	}
	r, err := contract.ParseRange(o.EgressPortRange)
	if err != nil {
		errs = append(errs, fmt.Errorf("--egress-port-range: %w", err))
	}
	o.ports = r
	cr, cerr := contract.ParseRange(o.ClustersetPortRange)
	if cerr != nil {
		errs = append(errs, fmt.Errorf("--clusterset-port-range: %w", cerr))
	} else if err == nil && cr.Min <= r.Max && r.Min <= cr.Max {
		errs = append(errs, fmt.Errorf("--clusterset-port-range %s overlaps --egress-port-range %s; the two must be disjoint", cr, r))
	}
	o.clustersetPorts = cr
	ns, name, ok := strings.Cut(o.GatewayService, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
		errs = append(errs, fmt.Errorf("--gateway-service %q: want namespace/name", o.GatewayService))
	}
	o.gateway = types.NamespacedName{Namespace: ns, Name: name}
	for flag, addr := range map[string]string{"--metrics-addr": o.MetricsAddr, "--health-addr": o.HealthAddr} {
		if err := validateAddr(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if o.TLSDir == "" && len(validation.IsDNS1123Subdomain(o.IssuerSecret)) > 0 {
		errs = append(errs, fmt.Errorf("--issuer-secret %q is not a valid Secret name", o.IssuerSecret))
	}
	if o.QPS < 0 || o.Burst < 0 {
		errs = append(errs, errors.New("client QPS and burst must be positive"))
	}
	return errors.Join(errs...)
}

func validateAddr(addr string) error {
	if addr == "" || addr == "0" {
		return nil
	}
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return fmt.Errorf("%q: want host:port, :port or 0 (off)", addr)
	}
	return nil
}
