package exportwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/slim"
)

// Watcher defaults.
const (
	// DefaultCoalesce is how long the Watcher waits after the first change
	// before recomputing, so a burst (a rollout touching many slices) becomes
	// one publish. It is a small part of the end-to-end latency budget.
	DefaultCoalesce = 10 * time.Millisecond
	// DefaultRetryInterval is how long a key whose cache read failed waits
	// before it is recomputed.
	DefaultRetryInterval = time.Second
)

// IndexServiceName is the cache's field index of EndpointSlices by the
// Service they belong to. The gateway's endpoints.Index reads through it.
const IndexServiceName = "ferry.dev/service-name"

// WatcherOptions configure a Watcher. The zero value watches every namespace.
type WatcherOptions struct {
	Logger *slog.Logger
	// Namespaces limits the watch; empty means all namespaces.
	Namespaces []string
	// Coalesce and RetryInterval: zero means the defaults above.
	Coalesce      time.Duration
	RetryInterval time.Duration
}

// Watcher keeps the export set of one cluster current from its API server
// and publishes it through a Publisher. It is level-based: an event only
// marks the key (namespace/name) it concerns as dirty; the loop then reads
// that key's ServiceExport, Service and EndpointSlices from the cache,
// recomputes its export with Compute, and publishes only if the result
// differs. Events for Services and EndpointSlices that no ServiceExport
// names are dropped in the handler, so churn in unexported Services costs
// one map lookup and never a publish.
type Watcher struct {
	*exports.Publisher
	cache cache.Cache
	log   *slog.Logger
	opts  WatcherOptions

	mu       sync.Mutex
	exported map[exports.Key]struct{} // keys with a ServiceExport in the cache
	dirty    map[exports.Key]struct{}
	kick     chan struct{}
}

// Scheme returns a scheme with the types the Watcher reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, mcsv1beta1.Install} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("exportwatch: scheme: %w", err)
		}
	}
	return s, nil
}

// NewWatcher returns a Watcher with its own cache on cfg. The cache holds
// EndpointSlices only if they carry kubernetes.io/service-name and are not
// Ferry's own (labelled ferry.dev/link or ferry.dev/clusterset), and it
// drops what Compute does not read: managed fields, Service annotations,
// and all but the name and labels of Ferry's own Services (slimService).
func NewWatcher(cfg *rest.Config, opts WatcherOptions) (*Watcher, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	// Mirror slices carry Ferry's ownership label, clusterset slices the
	// clusterset label; neither kind of Service can be exported, so their
	// slices are never needed here.
	sliceSel, err := labelsSelector(discoveryv1.LabelServiceName + ",!" + contract.LabelLink + ",!" + contract.LabelClusterset)
	if err != nil {
		return nil, err
	}
	copts := cache.Options{
		Scheme:           scheme,
		DefaultTransform: slim.Transform,
		ByObject: map[client.Object]cache.ByObject{
			// Nothing that reads this cache modifies what it reads (Compute
			// is pure, endpoints.Ready too), so reads skip the deep copy: the
			// gateway reads Services and slices on every new stream.
			&discoveryv1.EndpointSlice{}: {Label: sliceSel, UnsafeDisableDeepCopy: ptr.To(true)},
			&corev1.Service{}:            {Transform: slimService, UnsafeDisableDeepCopy: ptr.To(true)},
		},
	}
	if len(opts.Namespaces) > 0 {
		copts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.Namespaces {
			copts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	c, err := cache.New(cfg, copts)
	if err != nil {
		return nil, fmt.Errorf("exportwatch: cache: %w", err)
	}
	return newWatcher(c, opts), nil
}

// Default sets every zero field to its default. NewWatcher calls it: the
// watcher owns its options.
func (o *WatcherOptions) Default() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Coalesce = cmp.Or(o.Coalesce, DefaultCoalesce)
	o.RetryInterval = cmp.Or(o.RetryInterval, DefaultRetryInterval)
}

func newWatcher(c cache.Cache, opts WatcherOptions) *Watcher {
	opts.Default()
	return &Watcher{
		Publisher: exports.NewPublisher(),
		cache:     c,
		log:       opts.Logger.With("component", "exports-watcher"),
		opts:      opts,
		exported:  map[exports.Key]struct{}{},
		dirty:     map[exports.Key]struct{}{},
		kick:      make(chan struct{}, 1),
	}
}

// Reader reads from the Watcher's cache (ServiceExports, Services, slices).
func (w *Watcher) Reader() client.Reader { return w.cache }

// NeedLeaderElection is false: every gateway replica serves the export set.
func (w *Watcher) NeedLeaderElection() bool { return false }

// Start runs the cache and the recompute loop until ctx ends. The first Set
// marked Synced is published once the caches have synced.
func (w *Watcher) Start(ctx context.Context) error {
	if err := w.cache.IndexField(ctx, &discoveryv1.EndpointSlice{}, IndexServiceName, func(o client.Object) []string {
		if n := o.GetLabels()[discoveryv1.LabelServiceName]; n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("exportwatch: index: %w", err)
	}
	if err := w.addHandlers(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- w.cache.Start(ctx) }()
	if !w.cache.WaitForCacheSync(ctx) {
		cancel()
		if err := <-cacheErr; err != nil {
			return fmt.Errorf("exportwatch: cache: %w", err)
		}
		return fmt.Errorf("exportwatch: cache did not sync: %w", ctx.Err())
	}
	if err := w.initial(ctx); err != nil {
		return err
	}
	w.log.Info("export set synced", "exports", w.Current().Len())
	err := w.loop(ctx)
	cancel()
	if cerr := <-cacheErr; cerr != nil && !errors.Is(cerr, context.Canceled) {
		return fmt.Errorf("exportwatch: cache: %w", cerr)
	}
	return err
}

// initial computes the whole set from the synced caches and publishes it.
func (w *Watcher) initial(ctx context.Context) error {
	var ses mcsv1beta1.ServiceExportList
	var svcs corev1.ServiceList
	var sls discoveryv1.EndpointSliceList
	for _, l := range []client.ObjectList{&ses, &svcs, &sls} {
		if err := w.cache.List(ctx, l); err != nil {
			return fmt.Errorf("exportwatch: initial list: %w", err)
		}
	}
	set, sts := Compute(ptrs(ses.Items), ptrs(svcs.Items), ptrs(sls.Items))
	statuses := make(map[exports.Key]exports.Status, len(sts))
	w.mu.Lock()
	for _, se := range ses.Items {
		w.exported[exports.Key{Namespace: se.Namespace, Name: se.Name}] = struct{}{}
	}
	w.mu.Unlock()
	for _, s := range sts {
		statuses[s.Key] = s
	}
	w.Publish(set, statuses)
	return nil
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// loop recomputes dirty keys until ctx ends.
func (w *Watcher) loop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		}
		// Let a burst gather before recomputing.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.opts.Coalesce):
		}
		w.mu.Lock()
		keys := make([]exports.Key, 0, len(w.dirty))
		for k := range w.dirty {
			keys = append(keys, k)
		}
		clear(w.dirty)
		w.mu.Unlock()
		w.recompute(ctx, keys)
	}
}

// recompute recomputes keys and publishes the result if it changed. A key
// whose read fails is marked dirty again and retried later, so no change
// is ever lost to a transient error.
func (w *Watcher) recompute(ctx context.Context, keys []exports.Key) {
	results := make([]exports.Change, 0, len(keys))
	var failed []exports.Key
	for _, k := range keys {
		exp, st, err := w.computeKey(ctx, k)
		if err != nil {
			w.log.Warn("recompute export", "key", k.String(), "err", err)
			failed = append(failed, k)
			continue
		}
		results = append(results, exports.Change{Key: k, Export: exp, Status: st})
	}
	w.publish(results)
	if len(failed) > 0 {
		time.AfterFunc(w.opts.RetryInterval, func() {
			for _, k := range failed {
				w.mark(k)
			}
		})
	}
}

// publish applies results to the current Set, if that changes anything.
func (w *Watcher) publish(results []exports.Change) bool {
	ok := w.Apply(results)
	if ok {
		w.log.Debug("export set changed", "keys", len(results), "exports", w.Current().Len())
	}
	return ok
}

// computeKey reads one key from the cache and computes its export (nil when
// invalid or absent) and status (nil when there is no ServiceExport).
func (w *Watcher) computeKey(ctx context.Context, k exports.Key) (*exports.Export, *exports.Status, error) {
	se := &mcsv1beta1.ServiceExport{}
	if err := w.cache.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, se); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("serviceexport: %w", err)
	}
	var svcs []*corev1.Service
	svc := &corev1.Service{}
	switch err := w.cache.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, svc); {
	case err == nil:
		svcs = append(svcs, svc)
	case !apierrors.IsNotFound(err):
		return nil, nil, fmt.Errorf("service: %w", err)
	}
	var sls discoveryv1.EndpointSliceList
	if err := w.cache.List(ctx, &sls, client.InNamespace(k.Namespace), client.MatchingFields{IndexServiceName: k.Name}); err != nil {
		return nil, nil, fmt.Errorf("endpointslices: %w", err)
	}
	set, sts := Compute([]*mcsv1beta1.ServiceExport{se}, svcs, ptrs(sls.Items))
	if len(sts) == 0 { // being deleted
		return nil, nil, nil
	}
	if e, ok := set[k]; ok {
		return &e, &sts[0], nil
	}
	return nil, &sts[0], nil
}

func (w *Watcher) mark(k exports.Key) {
	w.mu.Lock()
	w.dirty[k] = struct{}{}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // a kick is already pending; the key is in the dirty set
	}
}

// markIfExported marks k only if a ServiceExport names it. A ServiceExport
// that appears later marks its key itself, so nothing is missed.
func (w *Watcher) markIfExported(k exports.Key) {
	w.mu.Lock()
	_, ok := w.exported[k]
	w.mu.Unlock()
	if ok {
		w.mark(k)
	}
}
