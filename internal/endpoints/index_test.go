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
	env, err := testenv.Start(ctx, testenv.Options{Clusters: []string{"east"}, CRDs: testenv.MCSCRDs()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	c := env.Clusters[0]

	// The gateway's wiring: the index reads the export watcher's cache.
	w, err := exportwatch.NewWatcher(c.RestConfig, exportwatch.WatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idx := endpoints.NewIndex(w.Reader(), exportwatch.IndexServiceName)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Start(wctx) }()
	defer func() { stop(); <-done }()
	if wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return w.Current().Synced, nil }) != nil {
		t.Fatal("watcher never synced")
	}
	if _, err := idx.Endpoints("app", "echo", 80); !errors.Is(err, endpoints.ErrNoSuchService) {
		t.Fatalf("before the Service exists: want ErrNoSuchService, got %v", err)
	}

	_, err = c.CreateBackend(ctx, testenv.Backend{Namespace: "app", Name: "echo", Endpoints: []testenv.Endpoint{
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
