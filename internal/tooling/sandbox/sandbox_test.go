package sandbox

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/cli"
	"ferry.dev/ferry/internal/tooling/netns"
)

// TestExportReachesImporterThroughGateways is the flow of one export,
// end to end, with every part running as it would in a cluster.
func TestExportReachesImporterThroughGateways(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	sb, err := Start(ctx, Options{Clusters: []string{"east", "west"}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() && os.Getenv("FERRY_KEEP_LOGS") != "" {
			t.Logf("logs kept in %s", sb.Dir())
			return
		}
		sb.Stop()
	}()
	east, west := sb.Cluster("east"), sb.Cluster("west")

	// What a demo shows of the local gateway: as many ready replicas as
	// the Deployment asks for (it showed 0/2, with no controller to write
	// the status).
	kubeconfig, err := sb.ForwardAPIServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := cli.Run(ctx, "--kubeconfig", kubeconfig, "--context", "east", "gateways")
	if err != nil {
		t.Fatalf("ferry gateways: %v\n%s", err, stderr)
	}
	if !regexp.MustCompile(`ferry-system/ferry-gateway +LoadBalancer +\S+ +1/1 +1/1\n`).MatchString(out) {
		t.Errorf("ferry gateways, want REPLICAS 1/1 and READY ENDPOINTS 1/1:\n%s", out)
	}

	echo, err := east.Echo(ctx, "demo", "echo", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Stop()
	if err := west.API.EnsureNamespace(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if err := east.Export(ctx, "demo", "echo"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Link(ctx, "west", "east", LinkOptions{ProbePeriod: time.Second, FailureThreshold: 2}); err != nil {
		t.Fatal(err)
	}

	var mirror corev1.Service
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		return west.API.Client.Get(ctx, types.NamespacedName{Namespace: "demo", Name: "echo-east"}, &mirror) == nil, nil
	})
	if err != nil {
		t.Fatalf("mirror echo-east never appeared in west:\n%s\n%s", west.Controller.Tail(30), east.Gateway.Tail(20))
	}
	var reply string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err = west.Request(ctx, "demo", "echo-east", 80, "hello from west")
		if err != nil {
			t.Logf("not yet: %v", err)
		}
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("west could not reach echo-east:\nwest gateway:\n%s\neast gateway:\n%s", west.Gateway.Tail(30), east.Gateway.Tail(30))
	}
	if !strings.HasPrefix(reply, "east/echo-") || !strings.HasSuffix(reply, ": hello from west") {
		t.Fatalf("reply %q did not come from east's echo pods", reply)
	}
	t.Logf("west -> echo-east: %q", reply)
}
