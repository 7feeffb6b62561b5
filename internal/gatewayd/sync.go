package gatewayd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/slim"
	"ferry.dev/ferry/internal/tunnel"
)

// routeTarget is what the route sync drives: *gateway.Egress.
type routeTarget interface {
	SetRemotes(map[string]tunnel.Remote)
	SetRoutes([]gateway.Route) error
}

// routeSync keeps egress in step with mirror Services, clusterset Services
// and Links. Events only
// mark it dirty; each pass recomputes everything from the caches, so a burst
// of changes costs one pass and nothing is ever queued or dropped.
type routeSync struct {
	// cache holds Links, mirror Services and the port claims; clustersets holds clusterset
	// Services (see newRouteSync for why they are two).
	cache           cache.Cache
	clustersets     cache.Cache
	namespace       string
	mesh            string
	ports           contract.Range
	clustersetPorts contract.Range
	egress          routeTarget
	// exports is this cluster's own export set: a clusterset route sends
	// the local share of a service this cluster exports to its endpoints.
	exports exportSource
	cluster string
	// localKeys are the services whose clusterset Service lists this
	// cluster, as the last pass saw them; only their local exports matter.
	// Read and written by Run's goroutine alone.
	localKeys map[exports.Key]bool
	log       *slog.Logger
	dirty     chan struct{}
	synced    atomic.Bool

	// claims decodes each claims shard once per resourceVersion.
	claims claims.Reader

	lastRoutes  []gateway.Route
	lastRemotes map[string]tunnel.Remote
}

// exportSource is the local export set (*exportwatch.Watcher).
type exportSource interface{ Current() *exports.Set }

func newRouteSync(cfg *rest.Config, scheme *runtime.Scheme, o Options, egress routeTarget, local exportSource) (*routeSync, error) {
	// Only Services that carry ferry.dev/link (mirrors) or
	// ferry.dev/clusterset (clusterset Services) are cached: the gateway
	// never needs the cluster's other Services for egress. A label selector
	// cannot say "either label", and a cache takes one selector per type, so
	// there are two caches, each watching Services with one label. That
	// costs one more watch; the alternative, caching every Service and
	// filtering in Routes, would hold the whole cluster's Services in memory
	// and run a routes pass on every change to any of them.
	selector := func(label string) (labels.Selector, error) {
		req, err := labels.NewRequirement(label, selection.Exists, nil)
		if err != nil {
			return nil, err
		}
		return labels.NewSelector().Add(*req), nil
	}
	hasLink, err := selector(contract.LabelLink)
	if err != nil {
		return nil, err
	}
	hasClusterset, err := selector(contract.LabelClusterset)
	if err != nil {
		return nil, err
	}
	// Both caches hold a Service per import: without their managed fields,
	// and with their metadata's strings shared (slim).
	c, err := cache.New(cfg, cache.Options{
		Scheme:           scheme,
		DefaultTransform: slim.Transform,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}:   {Label: hasLink},
			&ferryv1.Link{}:     {Namespaces: map[string]cache.Config{o.Namespace: {}}},
			&corev1.ConfigMap{}: claims.CacheConfig(o.Namespace),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gatewayd: route cache: %w", err)
	}
	cs, err := cache.New(cfg, cache.Options{
		Scheme:           scheme,
		DefaultTransform: slim.Transform,
		ByObject:         map[client.Object]cache.ByObject{&corev1.Service{}: {Label: hasClusterset}},
	})
	if err != nil {
		return nil, fmt.Errorf("gatewayd: clusterset route cache: %w", err)
	}
	s := &routeSync{cache: c, clustersets: cs, namespace: o.Namespace, mesh: o.MeshDomain,
		ports: o.EgressPorts, clustersetPorts: o.ClustersetPorts, egress: egress, exports: local, cluster: o.ClusterName,
		log: o.Logger.With("component", "routes"), dirty: make(chan struct{}, 1)}
	for _, w := range []struct {
		c   cache.Cache
		obj client.Object
	}{{c, &corev1.Service{}}, {c, &ferryv1.Link{}}, {c, &corev1.ConfigMap{}}, {cs, &corev1.Service{}}} {
		inf, err := w.c.GetInformer(context.Background(), w.obj)
		if err != nil {
			return nil, fmt.Errorf("gatewayd: informer: %w", err)
		}
		mark := func(any) { s.mark() }
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: mark, DeleteFunc: mark, UpdateFunc: func(any, any) { s.mark() },
		}); err != nil {
			return nil, fmt.Errorf("gatewayd: informer handler: %w", err)
		}
	}
	return s, nil
}

// routeRetry is how soon a pass that could not open every egress port
// (a bind failure, say) is retried without waiting for another change.
const routeRetry = 5 * time.Second

// pace is how long the route sync rests after a pass that took d before
// it starts another. A pass is O(imports) (Routes reads every Ferry
// Service), and during a burst (an initial import, where every new mirror
// and clusterset Service marks the sync) passes would otherwise run back
// to back and take a whole core from the API server and the controller:
// at 10k imports, resting as long as a pass (half a core) still kept the
// gateway the machine's second-busiest process for the whole import.
// Resting restFactor times as long keeps it to a quarter of a core; a
// route waits at most (1+restFactor) passes during a burst, and a lone
// change, which finds the sync rested, not at all. Passes under minPaced
// (a few hundred imports) do not rest.
func pace(d time.Duration) time.Duration {
	if d < minPaced {
		return 0
	}
	return restFactor * d
}

// minPaced and restFactor: see pace.
const (
	minPaced   = 5 * time.Millisecond
	restFactor = 3
)

func (s *routeSync) mark() {
	select {
	case s.dirty <- struct{}{}:
	default: // a pass is already due; it will see this change too
	}
}

// Run starts the caches and applies routes until ctx ends.
func (s *routeSync) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.cache.Start(ctx) }()
	go func() { errc <- s.clustersets.Start(ctx) }()
	if !s.cache.WaitForCacheSync(ctx) || !s.clustersets.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("gatewayd: route cache: %w", err)
		default:
			return ctx.Err()
		}
	}
	s.mark()
	seen := s.localSet()
	// paced is not nil while the route sync rests after a pass (pace);
	// marks made meanwhile wait in dirty and cost one pass after it.
	var paced <-chan time.Time
	for {
		// A new local export set can change a local destination's weight,
		// or whether there is one, but only for the clusterset services
		// that list this cluster, and only by what Routes reads of an
		// export (routesDiffer): other export changes (a label, an
		// endpoint that stays ready) cost no pass.
		var exportsChanged <-chan struct{}
		if seen != nil {
			exportsChanged = seen.Changed()
		}
		dirty := s.dirty
		if paced != nil {
			dirty = nil
		}
		select {
		case <-paced:
			paced = nil
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-exportsChanged:
			next := s.localSet()
			if slices.ContainsFunc(next.ChangedSince(seen), func(k exports.Key) bool {
				return s.localKeys[k] && routesDiffer(lookup(seen, k), lookup(next, k))
			}) {
				s.mark()
			}
			seen = next
		case <-dirty:
			start := time.Now()
			err := s.apply(ctx)
			if rest := pace(time.Since(start)); rest > 0 {
				paced = time.After(rest)
			}
			// Synced means "routes reflect the caches", not "every route
			// works": one unbindable port must not keep the whole gateway
			// out of its Service.
			s.synced.Store(true)
			if err != nil {
				s.log.Error("applying routes; retrying", "err", err, "in", routeRetry)
				time.AfterFunc(routeRetry, s.mark)
			}
		}
	}
}

func lookup(s *exports.Set, k exports.Key) *exports.Export {
	if e, ok := s.Export(k); ok {
		return &e
	}
	return nil
}

func (s *routeSync) localSet() *exports.Set {
	if s.exports == nil {
		return nil
	}
	return s.exports.Current()
}

// Synced reports whether routes have been applied from synced caches once.
func (s *routeSync) Synced() error {
	if !s.synced.Load() {
		return errors.New("mirror, clusterset and link caches not synced")
	}
	return nil
}

func (s *routeSync) apply(ctx context.Context) error {
	var links ferryv1.LinkList
	// Routes reads and never modifies what it is given, so the pass
	// reads the caches' own objects: a copy of every Service per pass was
	// most of its cost at 10k imports.
	if err := s.cache.List(ctx, &links, client.InNamespace(s.namespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	var mirrors, clustersets corev1.ServiceList
	if err := s.cache.List(ctx, &mirrors, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	if err := s.clustersets.List(ctx, &clustersets, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	lp := make([]*ferryv1.Link, len(links.Items))
	for i := range links.Items {
		lp[i] = &links.Items[i]
	}
	// A Service with both labels is in both lists; Routes refuses it, once.
	sp := make([]*corev1.Service, 0, len(mirrors.Items)+len(clustersets.Items))
	for i := range mirrors.Items {
		if _, both := mirrors.Items[i].Labels[contract.LabelClusterset]; !both {
			sp = append(sp, &mirrors.Items[i])
		}
	}
	s.localKeys = map[exports.Key]bool{}
	for i := range clustersets.Items {
		cs := &clustersets.Items[i]
		sp = append(sp, cs)
		if c, _, ok := clusterset.Read(cs, s.clustersetPorts); ok && slices.Contains(c.Clusters, s.cluster) {
			s.localKeys[exports.Key{Namespace: c.Key.Namespace, Name: c.Key.Service}] = true
		}
	}
	snap, err := s.claims.Read(ctx, s.cache, s.namespace)
	if err != nil {
		return err
	}
	for first, err := range snap.Broken {
		s.log.Error("port claims do not decode; their ports route nothing", "shard", first, "err", err)
	}
	remotes, problems := Remotes(s.mesh, lp)
	local := LocalExports{Cluster: s.cluster, Set: s.localSet()}
	routes, rp := Routes(sp, lp, snap.Table, local, s.ports, s.clustersetPorts)
	for _, p := range append(problems, rp...) {
		s.log.Warn("skipped", "problem", p)
	}
	// Remotes first: a new route must find its remote already known.
	if !reflect.DeepEqual(remotes, s.lastRemotes) {
		s.egress.SetRemotes(remotes)
		s.lastRemotes = remotes
		s.log.Info("remotes updated", "count", len(remotes))
	}
	if !reflect.DeepEqual(routes, s.lastRoutes) {
		if err := s.egress.SetRoutes(routes); err != nil {
			// The good routes are open; forget what was applied so the
			// retry tries the failed ones again.
			s.lastRoutes = nil
			return err
		}
		s.lastRoutes = routes
		s.log.Info("egress routes updated", "ports", len(routes))
	}
	return nil
}
