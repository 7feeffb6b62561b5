package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// ReadyTimeout bounds how long a cluster's daemons may take to turn ready.
const ReadyTimeout = 90 * time.Second

// Options configure Start.
type Options struct {
	// Clusters to run, e.g. {"east", "west", "north"}.
	Clusters []string
	// MeshDomain; default contract.DefaultMeshDomain.
	MeshDomain string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// Workloads runs, in each cluster, kube-controller-manager's workload
	// controllers (testenv.WorkloadControllers) and a stand-in for the
	// scheduler and kubelet (kubelet.go), so that namespaces get their
	// default ServiceAccount and finish deleting, Deployments and
	// StatefulSets get pods that turn Running, and Services get
	// EndpointSlices, as a conformance suite expects of a real cluster.
	Workloads bool
	// EgressPorts, "FIRST-LAST", is the egress port range `ferry install`
	// renders (install.Options.EgressPorts); empty keeps the install's
	// default. A scale run whose mirrors need more ports than the default
	// holds widens it here, as an operator would with --egress-ports.
	EgressPorts string
	// DaemonEnv is added to ferry-controller's and ferry-gateway's
	// environment, e.g. GODEBUG=gctrace=1 for a harness that reads their
	// heap after each GC from the logs; nil adds nothing.
	DaemonEnv []string
	// Audit makes every cluster's API server log each write, with the
	// writer's user agent (testenv.Cluster.AuditedWrites): a scenario can
	// then count what a process wrote from outside it.
	Audit bool
	// Pprof starts each daemon with --pprof-addr on its pod address: the
	// controller on ControllerPprofPort and the gateway on
	// GatewayPprofPort (the two share the address). See Cluster.Profile.
	Pprof bool
}

// The daemons' profile ports in a sandbox started with Pprof.
const (
	ControllerPprofPort = 6060
	GatewayPprofPort    = 6061
)

// Sandbox is a running set of clusters with Ferry installed in each.
type Sandbox struct {
	Env      *testenv.Env
	Net      *netns.Topology
	Mesh     string
	Root     *identity.CA
	Clusters []*Cluster

	bins        string
	egressPorts string
	daemonEnv   []string
	pprof       bool
	logf        func(string, ...any)
}

// Start builds everything and returns when every cluster's controller and
// gateway report ready. On error nothing is left running.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	if len(o.Clusters) == 0 {
		return nil, errors.New("sandbox: no clusters named")
	}
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sb := &Sandbox{Mesh: o.MeshDomain, egressPorts: o.EgressPorts, daemonEnv: o.DaemonEnv, pprof: o.Pprof, logf: logf}
	if err := sb.start(ctx, o); err != nil {
		sb.Stop()
		return nil, err
	}
	return sb, nil
}

func (sb *Sandbox) start(ctx context.Context, o Options) (err error) {
	logf := sb.logf

	logf("building ferry-controller and ferry-gateway")
	if sb.bins, err = EnsureDaemons(); err != nil {
		return err
	}
	if _, err = testenv.EnsureBinaries(); err != nil {
		return err
	}
	logf("creating network namespaces: one per cluster, joined by a WAN bridge")
	if sb.Net, err = netns.NewTopology(o.Clusters...); err != nil {
		return err
	}
	logf("starting %d control planes (etcd + kube-apiserver), each inside its cluster's namespace", len(o.Clusters))
	sb.Env, err = testenv.Start(ctx, testenv.Options{
		Clusters: o.Clusters,
		// The Gateway API's route CRDs too, as a platform team that
		// steers clusterset services installs them (docs/steering.md).
		CRDs:        slices.Concat(install.CRDDocuments(), testenv.GatewayAPICRDs()),
		AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme, gwv1.Install},
		Cluster: func(name string) testenv.ClusterOptions {
			site := sb.Net.Site(name)
			// The API server sits on the cluster's own network (not the
			// namespace's loopback), so tests can show that no other
			// cluster has a route to it.
			return testenv.ClusterOptions{Host: site.ControlPlaneAddr(), Wrap: site.NS.Wrap(), Dial: site.NS.DialContext, Audit: o.Audit}
		},
	})
	if err != nil {
		return err
	}
	logf("making the mesh's trust anchor and one name-constrained issuer per cluster")
	if sb.Root, err = identity.NewRoot(o.MeshDomain, 0); err != nil {
		return fmt.Errorf("sandbox: root: %w", err)
	}
	for _, name := range o.Clusters {
		c := &Cluster{Name: name, sb: sb, API: sb.Env.Cluster(name), Site: sb.Net.Site(name)}
		if c.Issuer, err = sb.Root.NewIssuer(name, 0); err != nil {
			return fmt.Errorf("sandbox: issuer for %s: %w", name, err)
		}
		sb.Clusters = append(sb.Clusters, c)
	}
	for _, c := range sb.Clusters {
		logf("cluster %s: ferry install, then ferry-controller and ferry-gateway (gateway on the WAN at %s)", c.Name, c.GatewayAddr())
		if err := c.install(ctx); err != nil {
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
		if err := c.startDaemons(ctx); err != nil {
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
	}
	for _, c := range sb.Clusters {
		if err := c.WaitReady(ctx, ReadyTimeout); err != nil {
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
		logf("cluster %s: controller and gateway ready", c.Name)
	}
	for _, c := range sb.Clusters {
		if err := c.startDNS(ctx); err != nil {
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
		logf("cluster %s: CoreDNS serving cluster.local and clusterset.local at %s, as kube-system/coredns", c.Name, c.DNS.Addr)
	}
	if !o.Workloads {
		return nil
	}
	for _, c := range sb.Clusters {
		if err := c.startWorkloads(ctx); err != nil {
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
		logf("cluster %s: kube-controller-manager (namespaces, service accounts, deployments, statefulsets, endpointslices) and a kubelet stand-in running", c.Name)
	}
	return nil
}

// Cluster returns the named cluster, or nil.
func (sb *Sandbox) Cluster(name string) *Cluster {
	for _, c := range sb.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Dir is where logs, kubeconfigs and identity files are.
func (sb *Sandbox) Dir() string { return sb.Env.Dir() }

// Kubeconfig has one admin context per cluster.
func (sb *Sandbox) Kubeconfig() string { return filepath.Join(sb.Env.Dir(), "kubeconfig") }

// Stop stops every process and removes the namespaces and files.
func (sb *Sandbox) Stop() {
	for _, c := range sb.Clusters {
		if c.stopKubelet != nil {
			c.stopKubelet()
		}
	}
	if sb.Env != nil {
		sb.Env.Stop()
	}
	if sb.Net != nil {
		if err := sb.Net.Close(); err != nil {
			sb.logf("sandbox: removing namespaces: %v", err)
		}
	}
}
