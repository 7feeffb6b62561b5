package issuer

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Defaults for Options.
const (
	// DefaultRetryInterval is the first wait after a failed renewal; it
	// doubles on each further failure up to DefaultMaxRetryInterval.
	DefaultRetryInterval    = 5 * time.Second
	DefaultMaxRetryInterval = 5 * time.Minute
	// DefaultRecheckInterval bounds the time between two passes even when
	// no timer or change is due, as a backstop for anything missed.
	DefaultRecheckInterval = 10 * time.Minute
	// ReportingController names Ferry's controller in Events.
	ReportingController = contract.ManagedBy
)

// expiringDenominator: a leaf that is due but not renewed, and has less than
// this share of its lifetime left, is reported as expiring: 4h of a 24h
// leaf, which is also 4h after renewal was first due and failed.
const expiringDenominator = 6

// maxEventNote keeps Event notes under the API's 1 kB limit.
const maxEventNote = 1000

// Options configure an Issuer. Zero values mean the defaults.
type Options struct {
	// Cluster is this cluster's name (--cluster-name). Required.
	Cluster string
	// MeshDomain is the mesh's domain. Default ferry.local.
	MeshDomain string
	// Namespace holds both Secrets. Default ferry-system.
	Namespace string
	// IssuerSecret and GatewaySecret name the Secrets.
	IssuerSecret, GatewaySecret string
	// LeafTTL is the lifetime of the leaves issued. Default 24h.
	LeafTTL time.Duration
	// Elected is closed when this replica may write the gateway Secret
	// (controller-runtime's mgr.Elected()). Nil means at once.
	Elected <-chan struct{}
	// Clock drives renewal timers and validity checks. Default the real clock.
	Clock clock.WithTicker
	// Registry receives the metrics. Nil registers nothing.
	Registry prometheus.Registerer
	// Recorder records Events (mgr.GetEventRecorder(...) fits). Default a
	// recorder of the issuer's own that writes events.k8s.io/v1 Events.
	Recorder events.EventRecorder
	// Instance names this replica in Events about its controller leaf.
	// Default the host name (the pod's name).
	Instance string
	Logger   *slog.Logger

	RetryInterval, MaxRetryInterval, RecheckInterval time.Duration
}

// Default sets every zero field to its default. New calls it: the issuer
// owns its options.
func (o *Options) Default() {
	o.MeshDomain = cmp.Or(o.MeshDomain, contract.DefaultMeshDomain)
	o.Namespace = cmp.Or(o.Namespace, contract.SystemNamespace)
	o.IssuerSecret = cmp.Or(o.IssuerSecret, contract.IssuerSecret)
	o.GatewaySecret = cmp.Or(o.GatewaySecret, contract.GatewayTLSSecret)
	o.LeafTTL = cmp.Or(o.LeafTTL, identity.DefaultLeafTTL)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	o.RetryInterval = cmp.Or(o.RetryInterval, DefaultRetryInterval)
	o.MaxRetryInterval = max(cmp.Or(o.MaxRetryInterval, DefaultMaxRetryInterval), o.RetryInterval)
	o.RecheckInterval = cmp.Or(o.RecheckInterval, DefaultRecheckInterval)
}

// Validate reports what cannot work. It changes nothing.
func (o Options) Validate() error {
	if err := contract.ValidateClusterName(o.Cluster); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if err := identity.ValidateMeshDomain(o.MeshDomain); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if o.IssuerSecret == o.GatewaySecret {
		return errors.New("issuer: the issuer and gateway Secrets must differ")
	}
	for name, d := range map[string]time.Duration{"leaf TTL": o.LeafTTL, "retry interval": o.RetryInterval, "recheck interval": o.RecheckInterval} {
		if d <= 0 {
			return fmt.Errorf("issuer: %s %s must be positive", name, d)
		}
	}
	return nil
}
