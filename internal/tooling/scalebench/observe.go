package scalebench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
)

// observer watches one namespace of the importer's API server with
// informers, as any client of the mirrors would, and records when objects
// first appear and when a mirror Service first carries each RevLabel value.
// Times are taken in the event handlers, so they include the watch's own
// delivery: what a consumer of the mirrors would see.
type observer struct {
	mu       sync.Mutex
	services map[string]struct{}
	slices   map[string]struct{}
	// revs: remote Service name → RevLabel value → first seen.
	revs map[string]map[string]time.Time
	// last is when the newest object was first seen.
	last time.Time
	// wake is closed and replaced on every recorded event, so waiters
	// re-check without polling.
	wake chan struct{}
	stop chan struct{}
}

// watchNamespace starts informers on namespace's Services and
// EndpointSlices that match selector, and returns once they have synced.
func watchNamespace(ctx context.Context, kube kubernetes.Interface, namespace, selector string) (*observer, error) {
	o := &observer{
		services: map[string]struct{}{}, slices: map[string]struct{}{},
		revs: map[string]map[string]time.Time{}, wake: make(chan struct{}), stop: make(chan struct{}),
	}
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	svc := f.Core().V1().Services().Informer()
	sl := f.Discovery().V1().EndpointSlices().Informer()
	if _, err := svc.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.service(obj) },
		UpdateFunc: func(_, obj any) { o.service(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch services: %w", err)
	}
	if _, err := sl.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { o.slice(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watch endpointslices: %w", err)
	}
	f.Start(o.stop)
	if !toolscache.WaitForCacheSync(ctx.Done(), svc.HasSynced, sl.HasSynced) {
		o.Stop()
		return nil, fmt.Errorf("watch %s: informers did not sync: %w", namespace, ctx.Err())
	}
	return o, nil
}

// Stop ends the informers.
func (o *observer) Stop() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
}

func (o *observer) service(obj any) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, had := o.services[s.Name]; !had {
		o.services[s.Name] = struct{}{}
		o.last = now
	}
	remote := s.Annotations[contract.AnnotationRemoteService]
	if remote == "" {
		remote = s.Name
	}
	if rev, ok := s.Labels[RevLabel]; ok {
		m := o.revs[remote]
		if m == nil {
			m = map[string]time.Time{}
			o.revs[remote] = m
		}
		if _, seen := m[rev]; !seen {
			m[rev] = now
		}
	}
	o.notify()
}

func (o *observer) slice(obj any) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, had := o.slices[s.Name]; !had {
		o.slices[s.Name] = struct{}{}
		o.last = now
	}
	o.notify()
}

// notify wakes waiters; o.mu is held.
func (o *observer) notify() {
	close(o.wake)
	o.wake = make(chan struct{})
}

// counts returns how many Services and EndpointSlices have been seen.
func (o *observer) counts() (services, slices int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.services), len(o.slices)
}

// waitFor blocks until cond (called with o.mu held) holds, or ctx ends.
func (o *observer) waitFor(ctx context.Context, cond func() bool) error {
	return waitWoken(ctx, &o.mu, func() chan struct{} { return o.wake }, cond)
}

// waitWoken blocks until cond, called with mu held, holds, or ctx ends. It
// checks again each time the channel that wake returns (under mu) is
// closed: the owner closes and replaces it whenever its state changes.
func waitWoken(ctx context.Context, mu *sync.Mutex, wake func() chan struct{}, cond func() bool) error {
	for {
		mu.Lock()
		ok, w := cond(), wake()
		mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w:
		}
	}
}

// waitCounts waits until at least services Services and slices
// EndpointSlices have been seen, and returns when the last one was.
func (o *observer) waitCounts(ctx context.Context, services, slices int) (time.Time, error) {
	var at time.Time
	err := o.waitFor(ctx, func() bool {
		at = o.last
		return len(o.services) >= services && len(o.slices) >= slices
	})
	if err != nil {
		s, sl := o.counts()
		return time.Time{}, fmt.Errorf("saw %d/%d Services and %d/%d EndpointSlices: %w", s, services, sl, slices, err)
	}
	return at, nil
}

// waitRev waits until the mirror of remote carries rev, and returns when
// that was first seen.
func (o *observer) waitRev(ctx context.Context, remote, rev string) (time.Time, error) {
	var at time.Time
	err := o.waitFor(ctx, func() bool {
		t, ok := o.revs[remote][rev]
		at = t
		return ok
	})
	return at, err
}

// exportWatch watches one ServiceExport on the exporter, as the exporter's
// own gateway does, and records when each RevLabel value of its
// exportedLabels was first seen: the API server's share of a change (the
// patch's round trip and the watch's delivery), which no exporter can beat.
type exportWatch struct {
	mu   sync.Mutex
	revs map[string]time.Time
	wake chan struct{}
	done chan struct{}
}

func watchExport(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, namespace, name string) (*exportWatch, error) {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("watch serviceexport: %w", err)
	}
	ew := &exportWatch{revs: map[string]time.Time{}, wake: make(chan struct{}), done: make(chan struct{})}
	open := func() (watch.Interface, error) {
		return c.Watch(ctx, &mcsv1beta1.ServiceExportList{}, client.InNamespace(namespace),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
	}
	w, err := open()
	if err != nil {
		return nil, fmt.Errorf("watch serviceexport %s: %w", name, err)
	}
	go func() {
		defer close(ew.done)
		for {
			for ev := range w.ResultChan() {
				se, ok := ev.Object.(*mcsv1beta1.ServiceExport)
				if !ok {
					continue
				}
				now := time.Now()
				ew.mu.Lock()
				if rev := se.Spec.ExportedLabels[RevLabel]; rev != "" {
					if _, seen := ew.revs[rev]; !seen {
						ew.revs[rev] = now
					}
				}
				close(ew.wake)
				ew.wake = make(chan struct{})
				ew.mu.Unlock()
			}
			if ctx.Err() != nil {
				return
			}
			// The server ended the watch (a timeout): open another.
			if w, err = open(); err != nil {
				return
			}
		}
	}()
	return ew, nil
}

// waitRev returns when rev was first seen.
func (ew *exportWatch) waitRev(ctx context.Context, rev string) (time.Time, error) {
	for {
		ew.mu.Lock()
		at, ok := ew.revs[rev]
		wake := ew.wake
		ew.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("serviceexport watch never showed %s=%s: %w", RevLabel, rev, ctx.Err())
		case <-wake:
		case <-ew.done:
			return time.Time{}, fmt.Errorf("serviceexport watch ended before %s=%s", RevLabel, rev)
		}
	}
}

// waitImportsReady waits until n ServiceImports in namespace have clusters
// and IPs, on a watch. It used to list them every second: at 9,500 a list
// of every ServiceImport (a custom resource, served as JSON) was most of
// the importing API server's work while the clusterset objects were
// written, so the harness slowed what it timed. ready, if not nil, is kept
// at the count seen so far, for progress lines.
func waitImportsReady(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, namespace string, n int, ready *atomic.Int64) error {
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("client for service imports: %w", err)
	}
	if ready == nil {
		ready = &atomic.Int64{}
	}
	for {
		// A new watch starts with every ServiceImport as it is now.
		seen := map[string]bool{}
		w, err := c.Watch(ctx, &mcsv1beta1.ServiceImportList{}, client.InNamespace(namespace))
		if err != nil {
			return fmt.Errorf("watch service imports: %w", err)
		}
		for ev := range w.ResultChan() {
			si, ok := ev.Object.(*mcsv1beta1.ServiceImport)
			if !ok {
				continue // a watch error: the channel closes next
			}
			if ev.Type == watch.Deleted || len(si.Status.Clusters) == 0 || len(si.Spec.IPs) == 0 {
				delete(seen, si.Name)
			} else {
				seen[si.Name] = true
			}
			ready.Store(int64(len(seen)))
			if len(seen) >= n {
				w.Stop()
				return nil
			}
		}
		w.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d ServiceImports: %w", ready.Load(), n, ctx.Err())
		case <-time.After(time.Second): // the watch ended: watch again
		}
	}
}
