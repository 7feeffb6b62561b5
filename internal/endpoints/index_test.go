package endpoints_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

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
