package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// churnServices is how many non-exported Services (each with an
// EndpointSlice) east creates, changes and deletes.
const churnServices = 2000

// Requirement II: independent state. Churn in east that is not exported
// costs west nothing: no objects, no feed updates. One exported change costs
// one feed update and O(1) writes in west.
func TestRequirementII_IndependentState(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	westBefore := countObjects(ctx, t, west)
	updatesBefore := feedFigure(ctx, t, "ferry_feed_updates_sent_total")
	bytesBefore := feedFigure(ctx, t, "ferry_feed_bytes_sent_total")

	start := time.Now()
	if err := churn(ctx, east, churnServices); err != nil {
		t.Fatal(err)
	}
	churnTime := time.Since(start)
	// Give anything that would leak time to arrive: well over the export
	// watcher's coalescing window and a feed heartbeat.
	time.Sleep(3 * time.Second)

	westAfter := countObjects(ctx, t, west)
	updates := feedFigure(ctx, t, "ferry_feed_updates_sent_total") - updatesBefore
	bytes := feedFigure(ctx, t, "ferry_feed_bytes_sent_total") - bytesBefore
	t.Logf("east: %d Services and %d EndpointSlices created, changed and deleted in %s (%d API writes)",
		churnServices, churnServices, churnTime.Round(time.Millisecond), 4*churnServices+churnServices)
	t.Logf("west: %d objects before, %d after; feed to west: %.0f updates, %.0f bytes (heartbeats only)", westBefore, westAfter, updates, bytes)
	if westAfter != westBefore {
		t.Errorf("west gained %d objects from east's unexported churn", westAfter-westBefore)
	}
	if updates != 0 {
		t.Errorf("east's feed sent west %.0f updates for unexported churn, want 0", updates)
	}
	if bytes > 4096 {
		t.Errorf("east's feed sent west %.0f bytes during unexported churn; heartbeats alone are a few dozen", bytes)
	}

	// One exported change: a port added to east's exported echo.
	writesBefore := westFigure(ctx, t, "ferry_importer_writes_total")
	updatesBefore = feedFigure(ctx, t, "ferry_feed_updates_sent_total")
	svc, err := getService(ctx, east, "echo")
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 81, TargetPort: intstr.FromInt32(sandbox.EchoPort), Protocol: corev1.ProtocolTCP})
	if err := east.API.Client.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		m, err := getService(ctx, west, "echo-east")
		return err == nil && len(m.Spec.Ports) == 2, nil
	})
	if err != nil {
		t.Fatal("the new port never reached west's mirror")
	}
	latency := time.Since(changed)
	// West's mirror can show the change before the counters do: east's feed
	// counts an update after Send returns, and west's importer counts a
	// write after it returns. Wait for the first of each.
	testkit.Eventually(t, "the feed update and a write in west counted", func() bool {
		return feedFigure(ctx, t, "ferry_feed_updates_sent_total") >= updatesBefore+1 &&
			westFigure(ctx, t, "ferry_importer_writes_total") >= writesBefore+1
	})
	time.Sleep(time.Second) // let any trailing write land, so it is counted
	updates = feedFigure(ctx, t, "ferry_feed_updates_sent_total") - updatesBefore
	writes := westFigure(ctx, t, "ferry_importer_writes_total") - writesBefore
	t.Logf("one exported change: %.0f feed update(s), %.0f API write(s) in west, visible in west after %s", updates, writes, latency.Round(time.Millisecond))
	if updates != 1 {
		t.Errorf("one exported change cost %.0f feed updates, want 1", updates)
	}
	if writes < 1 || writes > 4 {
		t.Errorf("one exported change cost %.0f writes in west, want O(1) (1 to 4)", writes)
	}
}

// churn creates, changes and deletes n Services with one EndpointSlice each
// in namespace "churn", none exported.
func churn(ctx context.Context, c *sandbox.Cluster, n int) error {
	if err := c.API.EnsureNamespace(ctx, "churn"); err != nil {
		return err
	}
	const workers = 16
	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := churnOne(ctx, c, i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func churnOne(ctx context.Context, c *sandbox.Cluster, i int) error {
	name := fmt.Sprintf("noise-%04d", i)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "churn", Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tcp", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if err := c.API.Client.Create(ctx, svc); err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "churn", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("tcp"), Port: ptr.To(int32(8080))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.1.200"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	if err := c.API.Client.Create(ctx, slice); err != nil {
		return err
	}
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	if err := c.API.Client.Update(ctx, slice); err != nil {
		return err
	}
	svc.Labels = map[string]string{"changed": "yes"}
	if err := c.API.Client.Update(ctx, svc); err != nil {
		return err
	}
	if err := c.API.Client.Delete(ctx, slice); err != nil {
		return err
	}
	return c.API.Client.Delete(ctx, svc)
}

func countObjects(ctx context.Context, t *testing.T, c *sandbox.Cluster) int {
	t.Helper()
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	if err := c.API.Client.List(ctx, &svcs); err != nil {
		t.Fatal(err)
	}
	if err := c.API.Client.List(ctx, &slices); err != nil {
		t.Fatal(err)
	}
	return len(svcs.Items) + len(slices.Items)
}

// feedFigure is a counter of east's feed towards west.
func feedFigure(ctx context.Context, t *testing.T, family string) float64 {
	t.Helper()
	text, err := east.GatewayMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sandbox.MetricSum(text, family, map[string]string{"cluster": "west"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// westFigure is a counter of west's controller.
func westFigure(ctx context.Context, t *testing.T, family string) float64 {
	t.Helper()
	text, err := west.ControllerMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sandbox.MetricSum(text, family, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
