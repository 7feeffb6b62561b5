package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// Namespace holds the scenarios' workloads in every cluster.
const Namespace = "chaos"

// Services are exported by east (and echo by north too): enough objects
// that "everything a Link owns is gone" counts more than one.
var Services = []string{"echo", "echo-b", "echo-c"}

// Row is one scenario's outcome, as docs/reliability.md lists it.
type Row struct {
	ID        string   `json:"id"`
	Scenario  string   `json:"scenario"`
	Criterion string   `json:"criterion"`
	Figure    string   `json:"figure"`
	Pass      bool     `json:"pass"`
	Details   []string `json:"details,omitempty"`
}

func (r *Row) detail(format string, args ...any) {
	r.Details = append(r.Details, fmt.Sprintf(format, args...))
}

// Env is the sandbox the scenarios share. A scenario leaves it as it found
// it: every Link present, every daemon running and ready.
type Env struct {
	SB                *sandbox.Sandbox
	East, West, North *sandbox.Cluster
	// Workloads in east and north, by Service name.
	EastEcho  map[string]*sandbox.Workload
	NorthEcho *sandbox.Workload
	// Kubeconfig reaches every cluster's API server from this process, as
	// an operator's workstation would (the ferry CLI uses it).
	Kubeconfig string
	Logf       func(format string, args ...any)
}

// Start builds the sandbox: audited API servers, east exporting Services,
// north exporting echo, west linked to both and importing them all.
func Start(ctx context.Context, logf func(string, ...any)) (_ *Env, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Clusters: []string{"east", "west", "north"}, Audit: true, Logf: logf})
	if err != nil {
		return nil, err
	}
	e := &Env{SB: sb, East: sb.Cluster("east"), West: sb.Cluster("west"), North: sb.Cluster("north"),
		EastEcho: map[string]*sandbox.Workload{}, Logf: logf}
	defer func() {
		if err != nil {
			sb.Stop()
		}
	}()
	// Forwarded for as long as ctx lives: the scenarios run within it.
	if e.Kubeconfig, err = sb.ForwardAPIServers(ctx); err != nil {
		return nil, err
	}
	for _, c := range sb.Clusters {
		if err := c.API.EnsureNamespace(ctx, Namespace); err != nil {
			return nil, err
		}
	}
	for _, name := range Services {
		w, err := e.East.Echo(ctx, Namespace, name, 2)
		if err != nil {
			return nil, err
		}
		e.EastEcho[name] = w
		if err := e.East.Export(ctx, Namespace, name); err != nil {
			return nil, err
		}
	}
	if e.NorthEcho, err = e.North.Echo(ctx, Namespace, "echo", 2); err != nil {
		return nil, err
	}
	if err := e.North.Export(ctx, Namespace, "echo"); err != nil {
		return nil, err
	}
	for _, exp := range []string{"east", "north"} {
		if err := e.link(ctx, exp); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Stop stops the sandbox.
func (e *Env) Stop() { e.SB.Stop() }

// link links west to exporter and waits until west serves its mirrors.
func (e *Env) link(ctx context.Context, exporter string) error {
	if _, err := e.SB.Link(ctx, "west", exporter, sandbox.LinkOptions{ProbePeriod: time.Second, FailureThreshold: 2}); err != nil {
		return err
	}
	names := []string{"echo"}
	if exporter == "east" {
		names = Services
	}
	for _, n := range names {
		if err := e.waitReachable(ctx, contract.MirrorName(n, exporter), 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitReachable waits until a west pod gets an answer through service.
func (e *Env) waitReachable(ctx context.Context, service string, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, last = e.West.Request(ctx, Namespace, service, 80, "ping")
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s not reachable from west: %w (last error: %w)", service, err, last)
	}
	return nil
}

// owned counts the Services and EndpointSlices in c that carry link's
// ownership label.
func owned(ctx context.Context, c *sandbox.Cluster, link string) (int, error) {
	sel := client.MatchingLabels{contract.LabelLink: link}
	var svcs corev1.ServiceList
	if err := c.API.Client.List(ctx, &svcs, sel); err != nil {
		return 0, fmt.Errorf("list services of link %s: %w", link, err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := c.API.Client.List(ctx, &slices, sel); err != nil {
		return 0, fmt.Errorf("list slices of link %s: %w", link, err)
	}
	return len(svcs.Items) + len(slices.Items), nil
}

// leaseHolder is the controller's leader-election Lease holder in c, or ""
// when the lease is released or absent.
func leaseHolder(ctx context.Context, c *sandbox.Cluster) (string, error) {
	var l coordinationv1.Lease
	err := c.API.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID}, &l)
	if err != nil {
		return "", fmt.Errorf("leader lease: %w", err)
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// waitLeader waits until the lease names want ("" for released) and
// returns how long that took.
func waitLeader(ctx context.Context, c *sandbox.Cluster, want string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		h, err := leaseHolder(ctx, c)
		if err != nil {
			return false, nil //nolint:nilerr // the API server may be busy; poll again
		}
		last = h
		return h == want, nil
	})
	if err != nil {
		return 0, fmt.Errorf("lease holder %q, want %q: %w", last, want, err)
	}
	return time.Since(start), nil
}

// writesBy returns the writes west's API server logged from the replica
// (by its user agent) received at or after since, except to its Lease and
// questions that store nothing (access reviews).
func writesBy(c *sandbox.Cluster, replica string, since time.Time) ([]testenv.AuditEvent, error) {
	tag := "(" + replica + ")"
	return c.API.AuditedWrites(func(ev testenv.AuditEvent) bool {
		return strings.HasSuffix(ev.UserAgent, tag) && !ev.Received.Before(since) && ev.Stores() && ev.ObjectRef.Resource != "leases"
	})
}

// ready waits, at most sandbox.ReadyTimeout, until daemon p of c answers
// /ready on its admin port.
func ready(ctx context.Context, c *sandbox.Cluster, p *testenv.Process, port int) error {
	ctx, cancel := context.WithTimeout(ctx, sandbox.ReadyTimeout)
	defer cancel()
	if err := c.WaitProcessReady(ctx, p, port); err != nil {
		return fmt.Errorf("%s: %w\n%s", c.Name, err, p.Tail(20))
	}
	return nil
}

// samplePeakRSS samples p's RSS every 50 ms until stop is first called;
// stop returns the highest it saw, every time (so a deferred call is safe).
func samplePeakRSS(ctx context.Context, p *testenv.Process) (stop func() int64) {
	ctx, cancel := context.WithCancel(ctx)
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if rss, err := p.RSS(); err == nil && rss > peak {
				peak = rss
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done // peak is written only before done closes
		return peak
	}
}

// since formats a duration for a figure.
func since(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// keyOf is name's key in Namespace.
func keyOf(name string) client.ObjectKey { return client.ObjectKey{Namespace: Namespace, Name: name} }
