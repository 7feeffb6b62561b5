package controllerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/importer"
	"ferry.dev/ferry/internal/profiling"
	"ferry.dev/ferry/internal/version"
)

// gracefulShutdown bounds how long runnables get to stop.
const gracefulShutdown = 15 * time.Second

// ErrInvalidOptions wraps the problems Run finds in its Options, so that a
// main can tell a configuration error (exit 2) from a failure.
var ErrInvalidOptions = errors.New("invalid configuration")

// Run completes o with its defaults, validates it, and runs the controller
// until ctx ends. It returns an error if the options are invalid or
// something cannot start; a running controller reports problems through
// status, Events, metrics and logs instead. The main and the tests call it
// the same way.
func Run(ctx context.Context, o Options) error {
	o.Default()
	if err := o.Validate(); err != nil {
		return fmt.Errorf("%w:\n%w", ErrInvalidOptions, err)
	}
	log := o.Logger.With("cluster", o.ClusterName)
	// client-go's reflectors log through controller-runtime's global
	// logger: unset, it drops those lines and prints a stack trace
	// complaining of it into the daemon's log.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))

	replica, err := o.replicaName()
	if err != nil {
		return err
	}
	cfg, err := o.restConfig(replica)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ferryv1.AddToScheme, mcsv1beta1.Install, gwv1.Install} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("scheme: %w", err)
		}
	}
	mo := manager.Options{
		Scheme:                        scheme,
		Logger:                        logr.FromSlogHandler(log.Handler()),
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              contract.LeaderElectionID,
		LeaderElectionNamespace:       contract.SystemNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr.To(leaseDuration),
		RenewDeadline:                 ptr.To(renewDeadline),
		RetryPeriod:                   ptr.To(retryPeriod),
		// The admin server below serves metrics and probes on one port,
		// as the install's contract says; the manager's own are off.
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		GracefulShutdownTimeout: ptr.To(gracefulShutdown),
		Controller:              config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	}
	if o.LeaderElect {
		// Every write of this process passes the fence; the lease itself
		// is renewed through a client of its own, outside it.
		if cfg, err = fenceWrites(cfg, &mo, replica); err != nil {
			return err
		}
	}
	importer.ConfigureManager(&mo, o.gateway(), contract.SystemNamespace)
	clusterset.ConfigureManager(&mo)
	mgr, err := manager.New(cfg, mo)
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	src, identityReady, err := identitySource(&o, mgr, kube)
	if err != nil {
		return err
	}
	if err := o.Registry.Register(certsecret.TrustCollector("controller", src)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := o.Registry.Register(version.Collector()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	for _, hook := range o.Hooks {
		if err := hook(Deps{Manager: mgr, Identity: src, Options: &o, Logger: log}); err != nil {
			return fmt.Errorf("hook: %w", err)
		}
	}
	status, err := addExportStatus(mgr, cfg, scheme, o.ClusterName, log.With("component", "exports"))
	if err != nil {
		return err
	}
	im, err := importer.Setup(ctx, mgr, importer.Options{
		MeshDomain: o.MeshDomain, Gateway: o.gateway(), Ports: o.EgressPorts,
		Identity: src, Feed: o.Feed, Prober: o.Prober, OnFeedChange: status.Trigger,
		Registry: o.Registry, Logger: log.With("component", "importer"),
		SkipNameValidation: o.SkipNameValidation,
	})
	if err != nil {
		return err
	}
	status.Peers = im.Peers
	if _, err := clusterset.Setup(mgr, clusterset.Options{
		Gateway: o.gateway(), Ports: o.ClustersetPorts, Registry: o.Registry,
		LocalCluster: o.ClusterName, LocalExports: status.Source,
		Logger: log.With("component", "clusterset"), SkipNameValidation: o.SkipNameValidation,
	}); err != nil {
		return err
	}

	synced := &cacheSynced{cache: mgr.GetCache()}
	if err := mgr.Add(synced); err != nil {
		return err
	}
	ready := func() error {
		if !synced.ok.Load() {
			return errors.New("caches not synced")
		}
		if err := identityReady(); err != nil {
			return fmt.Errorf("controller identity: %w", err)
		}
		return nil
	}
	adm, err := newAdmin(o.MetricsAddr, o.HealthAddr, o.Registry, ready, log)
	if err != nil {
		return err
	}
	if err := mgr.Add(adm); err != nil {
		adm.close()
		return err
	}
	if o.PprofAddr != "" {
		prof, err := profiling.Listen(o.PprofAddr, log)
		if err != nil {
			return err
		}
		if err := mgr.Add(prof); err != nil {
			return err
		}
	}
	log.Info("starting ferry-controller", "mesh", o.MeshDomain, "gateway", o.GatewayService,
		"egress_ports", o.EgressPorts.String(), "clusterset_ports", o.ClustersetPorts.String(), "leader_elect", o.LeaderElect, "qps", o.QPS, "burst", o.Burst)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// cacheSynced records that the manager's caches have synced, for /ready.
// Every replica runs it, not only the leader: a standby's caches sync too,
// and a standby that never turned ready would stall every rollout of a
// Deployment with two replicas (a plain RunnableFunc waits for leadership).
type cacheSynced struct {
	cache interface{ WaitForCacheSync(context.Context) bool }
	ok    atomic.Bool
}

func (s *cacheSynced) Start(ctx context.Context) error {
	s.ok.Store(s.cache.WaitForCacheSync(ctx))
	return nil
}

func (s *cacheSynced) NeedLeaderElection() bool { return false }

// restConfig loads the client configuration, with the rate limits raised
// deliberately (importer.DefaultQPS explains the numbers), and a user agent
// that names the replica.
func (o *Options) restConfig(replica string) (*rest.Config, error) {
	var cfg *rest.Config
	if o.RestConfig != nil {
		cfg = rest.CopyConfig(o.RestConfig)
	} else {
		var err error
		// An empty path means in-cluster.
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes config: %w", err)
		}
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	cfg.UserAgent = userAgent(replica)
	return cfg, nil
}

// userAgent is "ferry-controller/<version> (<replica>)": the API server's
// audit log and metrics then tell one replica's requests from another's,
// which "the resumed old leader writes nothing" is checked by.
func userAgent(replica string) string {
	return fmt.Sprintf("%s/%s (%s)", contract.ControllerName, version.Version, replica)
}

// replicaName is the pod's name, or outside a pod the host name with a
// random suffix, so that two processes on one host are two replicas.
func (o *Options) replicaName() (string, error) {
	if o.PodName != "" {
		return o.PodName, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("replica name: %w", err)
	}
	return host + "_" + string(uuid.NewUUID()), nil
}
