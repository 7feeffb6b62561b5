package issuer

import (
	"errors"
	"fmt"
	"log/slog"
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

func (o *Options) setDefaults() error {
	if err := contract.ValidateClusterName(o.Cluster); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	if err := identity.ValidateMeshDomain(o.MeshDomain); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if o.Namespace == "" {
		o.Namespace = contract.SystemNamespace
	}
	if o.IssuerSecret == "" {
		o.IssuerSecret = contract.IssuerSecret
	}
	if o.GatewaySecret == "" {
		o.GatewaySecret = contract.GatewayTLSSecret
	}
	if o.IssuerSecret == o.GatewaySecret {
		return errors.New("issuer: the issuer and gateway Secrets must differ")
	}
	if o.LeafTTL == 0 {
		o.LeafTTL = identity.DefaultLeafTTL
	}
	if o.LeafTTL < 0 {
		return fmt.Errorf("issuer: leaf TTL %s is negative", o.LeafTTL)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxRetryInterval <= 0 {
		o.MaxRetryInterval = DefaultMaxRetryInterval
	}
	o.MaxRetryInterval = max(o.MaxRetryInterval, o.RetryInterval)
	if o.RecheckInterval <= 0 {
		o.RecheckInterval = DefaultRecheckInterval
	}
	return nil
}
