package testenv

import (
	"context"
	"errors"
	"maps"
	"sync"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"ferry.dev/ferry/internal/writer"
)

// WriteCounts counts the API writes made through a client from CountWrites,
// by "verb Kind" ("create Service", "update EndpointSlice", "patch
// Link/status"), failed attempts included: what the API server sees is what
// Ferry's efficiency promises bound.
type WriteCounts struct {
	mu sync.Mutex
	m  map[string]int
}

// CountWrites wraps c, through controller-runtime's interceptor, in a client
// that counts its writes. Reads go to c unchanged.
func CountWrites(c client.Client) (client.Client, *WriteCounts) {
	w := &WriteCounts{m: map[string]int{}}
	kind := func(obj client.Object) string { return writer.KindOf(c.Scheme(), obj) }
	wrapped := interceptor.NewClient(noWatch{c}, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			w.add("create " + kind(obj))
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			w.add("update " + kind(obj))
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			w.add("patch " + kind(obj))
			return c.Patch(ctx, obj, p, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			w.add("delete " + kind(obj))
			return c.Delete(ctx, obj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			w.add("update " + kind(obj) + "/" + sub)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			w.add("patch " + kind(obj) + "/" + sub)
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	})
	return wrapped, w
}

func (w *WriteCounts) add(key string) {
	w.mu.Lock()
	w.m[key]++
	w.mu.Unlock()
}

// Snapshot returns the counts so far.
func (w *WriteCounts) Snapshot() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.m)
}

// Since returns the counts added after an earlier Snapshot.
func (w *WriteCounts) Since(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range w.Snapshot() {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Total is the number of writes so far.
func (w *WriteCounts) Total() int {
	n := 0
	for _, v := range w.Snapshot() {
		n += v
	}
	return n
}

// noWatch lets a manager's client.Client (which does not watch) be
// intercepted: the interceptor wraps a client.WithWatch.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("testenv: a write-counting client does not watch")
}
