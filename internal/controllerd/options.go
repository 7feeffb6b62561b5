package controllerd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

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
	// EgressPorts is where mirrors' egress ports are allocated.
	EgressPorts contract.Range
	// ClustersetPorts is where clusterset Services' egress ports are
	// allocated; it must not overlap EgressPorts.
	ClustersetPorts contract.Range
	// GatewayService is "namespace/name" of the local gateway Service.
	GatewayService string
	LeaderElect    bool
	// PodName is this replica's pod (POD_NAME, downward API). It is the
	// replica's leader-election identity, so a process restarted in the
	// same pod takes the lease its crashed predecessor held at once
	// instead of waiting it out; and it names the replica in the user
	// agent of every API request, so an audit log tells replicas apart.
	// Empty (outside a pod) means the host name and a random suffix.
	PodName string
	// MetricsAddr and HealthAddr are host:port; equal addresses share one
	// server, and "0" turns a server off.
	MetricsAddr, HealthAddr string
	// PprofAddr, host:port, serves runtime profiles (internal/profiling);
	// empty, the default, serves none.
	PprofAddr string
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

// Default sets every zero field to its default: the one defaulting step,
// taken by Run.
func (o *Options) Default() {
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	if o.EgressPorts == (contract.Range{}) {
		o.EgressPorts = contract.DefaultEgressRange()
	}
	if o.ClustersetPorts == (contract.Range{}) {
		o.ClustersetPorts = contract.DefaultClustersetRange()
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
	if o.Registry == nil {
		o.Registry = ctrlmetrics.Registry
	}
	if o.Feed == nil {
		o.Feed = importer.DialFeed
	}
}

// Validate checks every option, reporting all problems at once, each
// saying which flag to fix. It changes nothing.
func (o *Options) Validate() error {
	var errs []error
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
	}
	if err := identity.ValidateMeshDomain(o.MeshDomain); err != nil {
		errs = append(errs, fmt.Errorf("--mesh-domain: %w", err))
	}
	err := o.EgressPorts.Validate()
	if err != nil {
		errs = append(errs, fmt.Errorf("--egress-port-range: %w", err))
	}
	if cerr := o.ClustersetPorts.Validate(); cerr != nil {
		errs = append(errs, fmt.Errorf("--clusterset-port-range: %w", cerr))
	} else if err == nil && o.ClustersetPorts.Overlaps(o.EgressPorts) {
		errs = append(errs, fmt.Errorf("--clusterset-port-range %s overlaps --egress-port-range %s; the two must be disjoint", o.ClustersetPorts, o.EgressPorts))
	}
	if gw := o.gateway(); len(validation.IsDNS1123Label(gw.Namespace)) > 0 || len(validation.IsDNS1035Label(gw.Name)) > 0 {
		errs = append(errs, fmt.Errorf("--gateway-service %q: want namespace/name", o.GatewayService))
	}
	for flag, addr := range map[string]string{"--metrics-addr": o.MetricsAddr, "--health-addr": o.HealthAddr} {
		if err := validateAddr(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if o.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(o.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("--pprof-addr %q: %w", o.PprofAddr, err))
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

// gateway is GatewayService split into namespace and name.
func (o *Options) gateway() types.NamespacedName {
	ns, name, _ := strings.Cut(o.GatewayService, "/")
	return types.NamespacedName{Namespace: ns, Name: name}
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
