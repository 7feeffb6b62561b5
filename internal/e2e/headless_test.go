package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/tooling/netns"
)

// A StatefulSet in east is reached pod by pod from west, by name, through
// both gateways: web-1's names lead to web-1 and to no other pod, every
// time, as the bytes each pod answers with show. When web-1 turns
// not-ready its name stops resolving or its connections are refused, and
// when it is ready again it is back.
func TestStatefulSetPodsReachableByName(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	web, err := east.StatefulSet(ctx, ns, "web", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer web.Stop()
	if err := east.Export(ctx, ns, "web"); err != nil {
		t.Fatal(err)
	}
	names := []string{
		"web-1.east.web." + ns + ".svc.clusterset.local",
		"web-1.web-east." + ns + ".svc.cluster.local",
	}
	for _, name := range names {
		waitReply(ctx, t, name, "east/web-1: ")
		for i := range 20 {
			reply, err := west.RequestName(ctx, name, 80, "which pod")
			if err != nil || !strings.HasPrefix(reply, "east/web-1: ") {
				t.Fatalf("request %d to %s: %q, %v; want web-1 every time", i, name, reply, err)
			}
		}
	}
	// The service's name gives every pod, each at its own address.
	seen := map[string]bool{}
	all := "web." + ns + ".svc.clusterset.local"
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := west.RequestName(ctx, all, 80, "any pod")
		if err == nil {
			seen[strings.SplitN(reply, ":", 2)[0]] = true
		}
		return len(seen) == 3, nil
	})
	if err != nil {
		t.Errorf("%s reached %v, want all three pods", all, seen)
	}

	start := time.Now()
	if err := web.SetReady(ctx, 1, false); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			reply, err := west.RequestName(ctx, name, 80, "still there?")
			if err == nil && !strings.HasPrefix(reply, "east/web-1: ") {
				t.Fatalf("%s reached another pod: %q", name, reply)
			}
			return err != nil, nil
		})
		if err != nil {
			t.Fatalf("%s still reached web-1 30 s after it turned not-ready", name)
		}
	}
	gone := time.Since(start)
	if err := web.SetReady(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for _, name := range names {
		waitReply(ctx, t, name, "east/web-1: ")
	}
	t.Logf("web-1 by name: 20/20 to web-1 through each name; not-ready -> unreachable by both names in %v, ready -> back in %v",
		gone.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// waitReply waits until a request to name gets a reply that starts with
// prefix, and fails the test if a reply from anyone else comes first.
func waitReply(ctx context.Context, t *testing.T, name, prefix string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := west.RequestName(ctx, name, 80, "hello")
		if err != nil {
			last = err
			return false, nil
		}
		if !strings.HasPrefix(reply, prefix) {
			return false, errors.New(name + " answered by " + reply)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", name, err, last)
	}
}
