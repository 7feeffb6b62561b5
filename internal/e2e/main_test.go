package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/tooling/sandbox"
)

// The shared sandbox: west imports east's and north's echo; west also runs a
// local echo that is not exported.
var (
	sb                *sandbox.Sandbox
	east, west, north *sandbox.Cluster
)

const (
	ns = "demo"
	// Fast probes so failure tests take seconds, not minutes.
	probePeriod      = time.Second
	failureThreshold = 2
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		// Each test then reports, loudly, that it needs root (netns.RequireRoot).
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err := setup(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: sandbox setup failed:", err)
		if sb != nil {
			sb.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	sb.Stop()
	os.Exit(code)
}

func setup(ctx context.Context) error {
	var err error
	sb, err = sandbox.Start(ctx, sandbox.Options{Clusters: []string{"east", "west", "north"}, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "e2e: "+f+"\n", a...)
	}})
	if err != nil {
		return err
	}
	east, west, north = sb.Cluster("east"), sb.Cluster("west"), sb.Cluster("north")
	for _, c := range sb.Clusters {
		if err := c.API.EnsureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	for _, c := range []*sandbox.Cluster{east, north} {
		if _, err := c.Echo(ctx, ns, "echo", 2); err != nil {
			return err
		}
		if err := c.Export(ctx, ns, "echo"); err != nil {
			return err
		}
		if _, err := sb.Link(ctx, "west", c.Name, sandbox.LinkOptions{ProbePeriod: probePeriod, FailureThreshold: failureThreshold}); err != nil {
			return err
		}
	}
	if _, err := west.Echo(ctx, ns, "local", 1); err != nil {
		return err
	}
	for _, mirror := range []string{"echo-east", "echo-north"} {
		if err := waitReachable(ctx, mirror, 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitReachable waits until a west pod gets an answer through the mirror.
func waitReachable(ctx context.Context, mirror string, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, last = west.Request(ctx, ns, mirror, 80, "ping")
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s not reachable from west: %w (last error: %w)", mirror, err, last)
	}
	return nil
}

func getService(ctx context.Context, c *sandbox.Cluster, name string) (*corev1.Service, error) {
	var s corev1.Service
	err := c.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s)
	return &s, err
}

func clientInNS(namespace string) client.InNamespace { return client.InNamespace(namespace) }

func matchService(name string) client.MatchingLabels {
	return client.MatchingLabels{discoveryv1.LabelServiceName: name}
}
