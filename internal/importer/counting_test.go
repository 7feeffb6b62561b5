package importer_test

import (
	"context"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
)

// countingClient counts the API writes that go through it, by "verb kind"
// (e.g. "create Service", "patch Link/status"), failed attempts included:
// what the API server sees is what the efficiency requirements bound.
type countingClient struct {
	client.Client
	mu     sync.Mutex
	counts map[string]int
}

func newCountingClient(c client.Client) *countingClient {
	return &countingClient{Client: c, counts: map[string]int{}}
}

func kind(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Service:
		return "Service"
	case *discoveryv1.EndpointSlice:
		return "EndpointSlice"
	case *ferryv1.Link:
		return "Link"
	}
	return fmt.Sprintf("%T", obj)
}

func (c *countingClient) count(verb string, obj client.Object) {
	c.mu.Lock()
	c.counts[verb+" "+kind(obj)]++
	c.mu.Unlock()
}

// Snapshot returns the counts so far.
func (c *countingClient) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// Since returns the counts added after an earlier Snapshot.
func (c *countingClient) Since(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range c.Snapshot() {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.count("create", obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.count("update", obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.count("delete", obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.count("patch", obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.count("update", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.mu.Lock()
	s.c.counts["patch "+kind(obj)+"/status"]++
	s.c.mu.Unlock()
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
