package install

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/version"
)

// Defaults for Options. The CLI shows them in --help and the chart's
// values.yaml is generated from them.
const (
	DefaultRegistry           = "ferry.dev"
	DefaultGatewayServiceType = corev1.ServiceTypeLoadBalancer
	// DefaultGatewayReplicas is two because the gateway is the only path for
	// cross-cluster traffic: one replica means every node drain or rollout is
	// an outage for every import and export of the cluster.
	DefaultGatewayReplicas int32 = 2
	// DefaultControllerReplicas is one: the controller is leader-elected, so
	// more replicas only add warm standbys.
	DefaultControllerReplicas int32 = 1

	ControllerImageName = "ferry-controller"
	GatewayImageName    = "ferry-gateway"
)

// Options are everything that may differ between two installs. The zero
// value of each optional field means its default.
type Options struct {
	// ClusterName is this cluster's name, a DNS label. Required.
	ClusterName string
	// MeshDomain is the mesh's domain; empty means the issuer's (which is
	// contract.DefaultMeshDomain unless the root was made with another).
	MeshDomain string

	// Registry and ImageTag make the default image references
	// <Registry>/ferry-controller:<ImageTag>; ImageTag defaults to this
	// build's version, so a CLI installs the daemons it was released with.
	Registry string
	ImageTag string
	// ControllerImage and GatewayImage, if set, override the references.
	ControllerImage string
	GatewayImage    string

	// IssuerCertPEM, IssuerKeyPEM and TrustBundlePEM are the cluster's
	// issuer (from `ferry identity issuer`). Required.
	IssuerCertPEM  []byte
	IssuerKeyPEM   []byte
	TrustBundlePEM []byte

	// GatewayServiceType is LoadBalancer (default), NodePort or ClusterIP.
	GatewayServiceType corev1.ServiceType
	// GatewayReplicas and ControllerReplicas: zero means the default.
	GatewayReplicas    int32
	ControllerReplicas int32
	// EgressPorts is the range the controller allocates egress ports from,
	// "FIRST-LAST".
	EgressPorts string
	// CoreDNSServiceAccount, "namespace/name", is the cluster DNS's service
	// account, which the install lets read ServiceImports (docs/dns.md).
	// Empty means DefaultCoreDNSServiceAccount.
	CoreDNSServiceAccount string
	// Alerts adds Ferry's alerting rules (internal/monitoring) as a
	// prometheus-operator PrometheusRule. Off by default: applying it needs
	// the monitoring.coreos.com CRDs, which a cluster without the operator
	// lacks (docs/operations.md, "Alerts").
	Alerts bool
}

// spec is what the object builders consume: every field resolved and valid,
// and every field a plain value so that Chart can put placeholders in it.
type spec struct {
	clusterName, meshDomain       string
	controllerImage, gatewayImage string
	serviceType                   string
	egressPorts                   string
	// egressMin and egressMax are egressPorts' bounds, for the
	// NetworkPolicy.
	egressMin, egressMax int32
	// externalTrafficPolicy is the gateway Service's: Local where it has
	// external traffic, empty for ClusterIP.
	externalTrafficPolicy               string
	controllerReplicas, gatewayReplicas int32
	issuerCert, issuerKey, trustBundle  []byte
	// corednsNamespace and corednsName are CoreDNS's service account.
	corednsNamespace, corednsName string
	// alerts renders the PrometheusRule.
	alerts bool
}

// ErrInvalidOptions is wrapped by every validation error, so callers can tell
// a user's mistake from a failure.
var ErrInvalidOptions = errors.New("invalid install options")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// resolve validates o and fills in the defaults.
func (o Options) resolve() (spec, error) {
	var s spec
	if o.ClusterName == "" {
		return s, invalid("--cluster-name is required (a DNS label such as \"east\")")
	}
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		return s, invalid("%v", err)
	}
	s.clusterName = o.ClusterName

	trustDomain, mesh, err := checkIssuer(o)
	if err != nil {
		return s, err
	}
	s.meshDomain = o.MeshDomain
	if s.meshDomain == "" {
		s.meshDomain = mesh
	}
	if err := identity.ValidateMeshDomain(s.meshDomain); err != nil {
		return s, invalid("%v", err)
	}
	if want := s.clusterName + "." + s.meshDomain; trustDomain != want {
		return s, invalid("the issuer is for trust domain %s, but cluster %q in mesh %q needs %s: make one with `ferry identity issuer --cluster %s`",
			trustDomain, s.clusterName, s.meshDomain, want, s.clusterName)
	}
	s.issuerCert, s.issuerKey, s.trustBundle = o.IssuerCertPEM, o.IssuerKeyPEM, o.TrustBundlePEM

	if s.controllerImage, err = image(o, o.ControllerImage, ControllerImageName); err != nil {
		return s, err
	}
	if s.gatewayImage, err = image(o, o.GatewayImage, GatewayImageName); err != nil {
		return s, err
	}

	st, err := ParseServiceType(string(o.GatewayServiceType))
	if err != nil {
		return s, err
	}
	s.serviceType = string(st)
	if st != corev1.ServiceTypeClusterIP {
		s.externalTrafficPolicy = string(corev1.ServiceExternalTrafficPolicyLocal)
	}

	if s.gatewayReplicas, err = replicas("gateway", o.GatewayReplicas, DefaultGatewayReplicas); err != nil {
		return s, err
	}
	if s.controllerReplicas, err = replicas("controller", o.ControllerReplicas, DefaultControllerReplicas); err != nil {
		return s, err
	}

	ports := o.EgressPorts
	if ports == "" {
		ports = contract.DefaultEgressRange().String()
	}
	rg, err := contract.ParseRange(ports)
	if err != nil {
		return s, invalid("%v", err)
	}
	// The daemons refuse to start when the two ranges overlap; say so here,
	// before anything is applied.
	if cs := contract.DefaultClustersetRange(); rg.Overlaps(cs) {
		return s, invalid("egress port range %q overlaps the clusterset port range %s: choose a range outside it", ports, cs)
	}
	s.egressPorts = rg.String()
	s.egressMin, s.egressMax = rg.Min, rg.Max

	sa := o.CoreDNSServiceAccount
	if sa == "" {
		sa = DefaultCoreDNSServiceAccount
	}
	if s.corednsNamespace, s.corednsName, err = parseServiceAccount(sa); err != nil {
		return s, err
	}
	s.alerts = o.Alerts
	return s, nil
}

// checkIssuer loads the issuer through internal/identity (the only package
// that parses certificates) and returns its trust and mesh domains.
func checkIssuer(o Options) (trustDomain, mesh string, err error) {
	var missing []string
	for _, m := range []struct {
		flag string
		pem  []byte
	}{{"--issuer-cert", o.IssuerCertPEM}, {"--issuer-key", o.IssuerKeyPEM}, {"--trust-bundle", o.TrustBundlePEM}} {
		if len(m.pem) == 0 {
			missing = append(missing, m.flag)
		}
	}
	if len(missing) > 0 {
		return "", "", invalid("missing issuer material (%s): pass --identity-dir with the output of `ferry identity issuer --cluster %s`, or --issuer-cert, --issuer-key and --trust-bundle",
			strings.Join(missing, ", "), clusterOr(o.ClusterName))
	}
	ca, _, err := identity.LoadIssuer(o.IssuerCertPEM, o.IssuerKeyPEM, o.TrustBundlePEM)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if trustDomain, err = ca.TrustDomain(); err != nil {
		return "", "", fmt.Errorf("%w: issuer: %w", ErrInvalidOptions, err)
	}
	if mesh, err = ca.MeshDomain(); err != nil {
		return "", "", fmt.Errorf("%w: issuer: %w", ErrInvalidOptions, err)
	}
	return trustDomain, mesh, nil
}

func clusterOr(name string) string {
	if name == "" {
		return "NAME"
	}
	return name
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func image(o Options, override, name string) (string, error) {
	if override != "" {
		if strings.ContainsAny(override, " \t\r\n\"'") {
			return "", invalid("image %q: must not contain spaces or quotes", override)
		}
		return override, nil
	}
	reg := o.Registry
	if reg == "" {
		reg = DefaultRegistry
	}
	if strings.ContainsAny(reg, " \t\r\n\"'") || strings.HasSuffix(reg, "/") {
		return "", invalid("registry %q: want a host and optional path, without a trailing slash", reg)
	}
	tag := o.ImageTag
	if tag == "" {
		tag = version.Version
	}
	if !tagPattern.MatchString(tag) {
		return "", invalid("image tag %q: want letters, digits, '_', '.' and '-', at most 128", tag)
	}
	return reg + "/" + name + ":" + tag, nil
}

// ParseServiceType accepts a gateway Service type in any letter case; ""
// means the default.
func ParseServiceType(s string) (corev1.ServiceType, error) {
	if s == "" {
		return DefaultGatewayServiceType, nil
	}
	for _, t := range ServiceTypes() {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", invalid("gateway service type %q: want LoadBalancer, NodePort or ClusterIP", s)
}

// ServiceTypes are the gateway Service types an install supports.
// ExternalName cannot carry traffic to pods, so it is not one of them.
func ServiceTypes() []corev1.ServiceType {
	return []corev1.ServiceType{corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort, corev1.ServiceTypeClusterIP}
}

func replicas(what string, n, def int32) (int32, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0:
		return 0, invalid("%s replicas %d: must be at least 1", what, n)
	}
	return n, nil
}
