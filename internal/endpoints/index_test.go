package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/endpoints"
	"ferry.dev/ferry/internal/exportwatch"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// The index follows a real API server: endpoints appear, turn not-ready and
// change without a restart.
func TestIndexFollowsAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, idx := startIndex(t, ctx)
	if _, err := idx.Endpoints("app", "echo", 80); !errors.Is(err, endpoints.ErrNoSuchService) {
		t.Fatalf("before the Service exists: want ErrNoSuchService, got %v", err)
	}

	_, err := c.CreateBackend(ctx, testenv.Backend{Namespace: "app", Name: "echo", Endpoints: []testenv.Endpoint{
		{IP: "198.18.1.10", Port: 8080, Ready: true},
		{IP: "198.18.1.11", Port: 8080, Ready: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, idx, []string{"198.18.1.10:8080", "198.18.1.11:8080"})

	err = c.SetEndpoints(ctx, "app", "echo", []testenv.Endpoint{
		{IP: "198.18.1.10", Port: 8080, Ready: false},
		{IP: "198.18.1.11", Port: 8080, Ready: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, idx, []string{"198.18.1.11:8080"})

	// Hand-written slices of an exported Service that point at the API
	// server (issue 11, finding 7): one without the controller's label or
	// Pod references, one that forges the controller's label. The gateway
	// would dial them for another cluster; the index serves neither.
	var kubeSvc corev1.Service
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &kubeSvc); err != nil {
		t.Fatal(err)
	}
	for i, managedBy := range []string{"", endpoints.EndpointSliceControllerName} {
		name := fmt.Sprintf("evil%d", i)
		if err := c.Client.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}},
		}); err != nil {
			t.Fatal(err)
		}
		lbls := map[string]string{discoveryv1.LabelServiceName: name}
		if managedBy != "" {
			lbls[discoveryv1.LabelManagedBy] = managedBy
		}
		if err := c.Client.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "app", Name: name, Labels: lbls},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](443)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{kubeSvc.Spec.ClusterIP}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A real backend created afterwards proves the cache has caught up.
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: "app", Name: "after", Endpoints: []testenv.Endpoint{{IP: "198.18.1.12", Port: 8080, Ready: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, _ := idx.Endpoints("app", "after", 80)
		return len(got) == 1, nil
	}); err != nil {
		t.Fatal("the index never saw the backend created after the forged slices")
	}
	for _, name := range []string{"evil0", "evil1"} {
		if got, err := idx.Endpoints("app", name, 443); len(got) != 0 {
			t.Errorf("%s: the index serves %v (%v), an address of the API server", name, got, err)
		}
	}
}

// A hostname picks the one pod of a headless Service that carries it, from
// the same trusted slices: it follows readiness, and a hand-written slice
// that claims the hostname neither adds an address nor hides the real one.
func TestIndexHostEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, idx := startIndex(t, ctx)
	if _, err := idx.HostEndpoints("app", "web", "web-1", 80); !errors.Is(err, endpoints.ErrNoSuchService) {
		t.Fatalf("before the Service exists: want ErrNoSuchService, got %v", err)
	}

	pods := func(ready1 bool) []testenv.Endpoint {
		return []testenv.Endpoint{
			{IP: "198.18.2.10", Port: 8080, Ready: true, Hostname: "web-0"},
			{IP: "198.18.2.11", Port: 8080, Ready: ready1, Hostname: "web-1"},
			{IP: "198.18.2.12", Port: 8080, Ready: true, Hostname: "web-2"},
		}
	}
	if _, err := c.CreateBackend(ctx, testenv.Backend{Namespace: "app", Name: "web", Headless: true, Endpoints: pods(true)}); err != nil {
		t.Fatal(err)
	}
	waitForHost(t, ctx, idx, "web-1", []string{"198.18.2.11:8080"})
	// The Service port is 80; an unknown port is no endpoint, as without a
	// hostname.
	if got, err := idx.HostEndpoints("app", "web", "web-1", 81); len(got) != 0 || !errors.Is(err, endpoints.ErrNoSuchPort) {
		t.Fatalf("port 81: %v, %v; want ErrNoSuchPort", got, err)
	}
	if got, err := idx.HostEndpoints("app", "web", "web-9", 80); len(got) != 0 || err != nil {
		t.Fatalf("web-9: %v, %v; want nothing", got, err)
	}

	// A slice written by hand (no controller label, no Pod reference) that
	// claims web-1 for the API server's address.
	var kubeSvc corev1.Service
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &kubeSvc); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "app", Name: "web-forged", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(testenv.DefaultBackendPortName), Port: ptr.To[int32](443)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{kubeSvc.Spec.ClusterIP}, Hostname: ptr.To("web-1")},
			{Addresses: []string{"198.18.2.99"}, Hostname: ptr.To("web-1")},
		},
	}); err != nil {
		t.Fatal(err)
	}
	// web-1 turning not ready proves the cache has seen the forged slice
	// (created before it): the hostname then names no ready pod, and the
	// forged endpoints do not stand in for it.
	if err := c.SetEndpoints(ctx, "app", "web", pods(false)); err != nil {
		t.Fatal(err)
	}
	waitForHost(t, ctx, idx, "web-1", nil)
	waitForHost(t, ctx, idx, "web-2", []string{"198.18.2.12:8080"})
	if err := c.SetEndpoints(ctx, "app", "web", pods(true)); err != nil {
		t.Fatal(err)
	}
	waitForHost(t, ctx, idx, "web-1", []string{"198.18.2.11:8080"})
	// Without a hostname the Service's endpoints are all three pods, and
	// still none of the forged ones.
	if got, _ := idx.Endpoints("app", "web", 80); !slices.Equal(got, []string{"198.18.2.10:8080", "198.18.2.11:8080", "198.18.2.12:8080"}) {
		t.Fatalf("Endpoints = %v", got)
	}
}

func waitForHost(t *testing.T, ctx context.Context, idx *endpoints.Index, hostname string, want []string) {
	t.Helper()
	var got []string
	var err error
	if wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, err = idx.HostEndpoints("app", "web", hostname, 80)
		return err == nil && slices.Equal(got, want), nil
	}) != nil {
		t.Fatalf("index shows %v (%v) for %s, want %v", got, err, hostname, want)
	}
}

func waitFor(t *testing.T, ctx context.Context, idx *endpoints.Index, want []string) {
	t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, _ = idx.Endpoints("app", "echo", 80)
		return slices.Equal(got, want), nil
	})
	if err != nil {
		t.Fatalf("index shows %v, want %v", got, want)
	}
}

// startIndex starts a cluster and the index as the gateway wires it (over
// the export watcher's cache), synced; both stop when the test ends.
func startIndex(t *testing.T, ctx context.Context) (*testenv.Cluster, *endpoints.Index) {
	t.Helper()
	env, err := testenv.Start(ctx, testenv.Options{Clusters: []string{"east"}, CRDs: testenv.MCSCRDs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	c := env.Clusters[0]
	w, err := exportwatch.NewWatcher(c.RestConfig, exportwatch.WatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idx := endpoints.NewIndex(w.Reader(), exportwatch.IndexServiceName)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Start(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	if wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return w.Current().Synced, nil }) != nil {
		t.Fatal("watcher never synced")
	}
	return c, idx
}
