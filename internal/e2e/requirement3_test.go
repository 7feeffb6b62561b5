package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// convergeLimit is requirement III's bound on recovery after east returns.
const convergeLimit = 30 * time.Second

// Requirement III: an independent control plane. East's API server and
// gateway die (SIGKILL). West's own traffic and its imports from north see
// no error; east's mirrors stay and turn not-ready; when east returns the
// state converges without a mirror ever being deleted and recreated.
func TestRequirementIII_IndependentControlPlane(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	mirror, err := getService(ctx, west, "echo-east")
	if err != nil {
		t.Fatal(err)
	}
	// Watch west's mirror for a delete from here to the end.
	w, err := west.API.Kube.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=echo-east", ResourceVersion: mirror.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var deletes atomic.Int32
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				deletes.Add(1)
			}
		}
	}()

	// Steady traffic from a west pod: to west's own Service, and to north.
	loadCtx, stopLoad := context.WithCancel(ctx)
	local, toNorth, toSet := &traffic{}, &traffic{}, &traffic{}
	var wg sync.WaitGroup
	for _, tr := range []struct {
		svc string
		t   *traffic
	}{{"local", local}, {"echo-north", toNorth}, {contract.ClustersetName("echo"), toSet}} {
		wg.Add(1)
		go func() { defer wg.Done(); tr.t.run(loadCtx, tr.svc) }()
	}

	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	east.Gateway.Kill()
	east.API.StopAPIServer(true)
	t.Logf("east's kube-apiserver and ferry-gateway killed (SIGKILL)")
	// Detection: west's gateway has lost every tunnel session to east. A
	// clusterset connection opened from then on must never fail; one whose
	// stream east had already accepted when it died is lost in flight, as
	// it would be behind any proxy (its bytes may have reached east).
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		text, err := west.GatewayMetrics(ctx)
		if err != nil {
			return false, nil
		}
		up, err := sandbox.MetricSum(text, "ferry_gateway_remote_up", map[string]string{"remote": "east"})
		return err == nil && up == 0, nil
	})
	if err != nil {
		t.Fatalf("west's gateway never noticed east's gateway was gone:\n%s", west.Gateway.Tail(20))
	}
	detected := time.Now()
	t.Logf("west's gateway saw east's sessions gone within %s of the kill", detected.Sub(killed).Round(10*time.Millisecond))

	// The mirror stays and its endpoints turn not-ready after the threshold.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ready, total := mirrorEndpoints(ctx, t)
		return total > 0 && ready == 0, nil
	})
	if err != nil {
		t.Fatalf("east's mirror endpoints never turned not-ready:\n%s", west.Controller.Tail(20))
	}
	notReadyAfter := time.Since(killed)
	if _, err := getService(ctx, west, "echo-east"); err != nil {
		t.Fatalf("east's mirror is gone while east is down: %v", err)
	}
	t.Logf("echo-east in west: kept, endpoints not-ready %s after the kill (probe %s x %d)", notReadyAfter.Round(100*time.Millisecond), probePeriod, failureThreshold)
	time.Sleep(2 * time.Second) // let traffic run against the outage

	restarted := time.Now()
	if err := east.API.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := east.StartGateway(); err != nil {
		t.Fatal(err)
	}
	if err := waitReachable(ctx, "echo-east", convergeLimit); err != nil {
		t.Fatalf("%v\nwest controller:\n%s", err, west.Controller.Tail(20))
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, convergeLimit, true, func(ctx context.Context) (bool, error) {
		ready, total := mirrorEndpoints(ctx, t)
		return total > 0 && ready == total, nil
	})
	if err != nil {
		t.Fatal("echo-east's endpoints never turned ready again")
	}
	converged := time.Since(restarted)
	stopLoad()
	wg.Wait()

	after, err := getService(ctx, west, "echo-east")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("east restarted: converged in %s (limit %s)", converged.Round(100*time.Millisecond), convergeLimit)
	t.Logf("west -> local:      %d requests, %d errors", local.ok.Load()+local.failed.Load(), local.failed.Load())
	t.Logf("west -> echo-north: %d requests, %d errors", toNorth.ok.Load()+toNorth.failed.Load(), toNorth.failed.Load())
	inFlight, late := toSet.failuresAround(detected)
	t.Logf("west -> %s (east+north): %d requests, %d errors (%d in flight through east when it died, %d after its loss was detected)",
		contract.ClustersetName("echo"), toSet.ok.Load()+toSet.failed.Load(), toSet.failed.Load(), inFlight, late)
	t.Logf("echo-east mirror: uid %s before and %s after; %d delete events", mirror.UID, after.UID, deletes.Load())
	if converged > convergeLimit {
		t.Errorf("convergence took %s, over %s", converged, convergeLimit)
	}
	// West's own traffic and its imports from north never see east's
	// outage.
	for name, tr := range map[string]*traffic{"local": local, "echo-north": toNorth} {
		if tr.failed.Load() != 0 || tr.ok.Load() == 0 {
			t.Errorf("west -> %s: %d errors, %d successes during east's outage (last error: %v)", name, tr.failed.Load(), tr.ok.Load(), tr.lastErr.Load())
		}
	}
	// The clusterset fails over to north: no connection opened after the
	// detection fails, and at most the one request in flight through east
	// when it died is lost (the load is one request at a time).
	if toSet.ok.Load() == 0 || late != 0 || inFlight > 1 {
		t.Errorf("west -> %s: %d failed after east's loss was detected (want 0), %d before it (want at most the 1 in flight), %d successes (last error: %v)",
			contract.ClustersetName("echo"), late, inFlight, toSet.ok.Load(), toSet.lastErr.Load())
	}
	if after.UID != mirror.UID || deletes.Load() != 0 {
		t.Errorf("echo-east was deleted and recreated during the outage")
	}
}

// mirrorEndpoints counts ready and all endpoints of west's echo-east.
func mirrorEndpoints(ctx context.Context, t *testing.T) (ready, total int) {
	var slices discoveryv1.EndpointSliceList
	if err := west.API.Client.List(ctx, &slices, clientInNS(ns), matchService("echo-east")); err != nil {
		return 0, 0
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			total++
			if ptr.Deref(ep.Conditions.Ready, true) {
				ready++
			}
		}
	}
	return ready, total
}

// traffic sends requests one after another until ctx ends.
type traffic struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value

	mu         sync.Mutex
	failStarts []time.Time // when each failed request started
}

// failuresAround counts the failed requests that started before t and
// those that started at t or later.
func (tr *traffic) failuresAround(t time.Time) (before, after int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range tr.failStarts {
		if s.Before(t) {
			before++
		} else {
			after++
		}
	}
	return before, after
}

func (tr *traffic) run(ctx context.Context, svc string) {
	for ctx.Err() == nil {
		started := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := west.Request(rctx, ns, svc, 80, "steady")
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the test ended the load mid-request: not a failure
		case err != nil:
			tr.failed.Add(1)
			tr.lastErr.Store(fmt.Sprint(err))
			tr.mu.Lock()
			tr.failStarts = append(tr.failStarts, started)
			tr.mu.Unlock()
		default:
			tr.ok.Add(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
