package gatewayd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
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
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/names"
	"ferry.dev/ferry/internal/tunnel"
)

// routeTarget is what the route sync drives: *gateway.Egress.
type routeTarget interface {
	SetRemotes(map[string]tunnel.Remote)
	SetRoutes([]gateway.Route) error
}

// routeSync keeps egress in step with mirror Services and Links. Events only
// mark it dirty; each pass recomputes everything from the caches, so a burst
// of changes costs one pass and nothing is ever queued or dropped.
type routeSync struct {
	cache     cache.Cache
	namespace string
	mesh      string
	ports     mirror.Range
	egress    routeTarget
	log       *slog.Logger
	dirty     chan struct{}
	synced    atomic.Bool

	lastRoutes  []gateway.Route
	lastRemotes map[string]tunnel.Remote
}

func newRouteSync(cfg *rest.Config, scheme *runtime.Scheme, o Options, egress routeTarget) (*routeSync, error) {
	// Only Services that carry Ferry's link label are cached: the gateway
	// never needs the cluster's other Services for egress.
	hasLink, err := labels.NewRequirement(names.LabelLink, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}: {Label: labels.NewSelector().Add(*hasLink)},
			&ferryv1.Link{}:   {Namespaces: map[string]cache.Config{o.Namespace: {}}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("gatewayd: route cache: %w", err)
	}
	s := &routeSync{cache: c, namespace: o.Namespace, mesh: o.MeshDomain, ports: o.EgressPorts, egress: egress,
		log: o.Logger.With("component", "routes"), dirty: make(chan struct{}, 1)}
	for _, obj := range []client.Object{&corev1.Service{}, &ferryv1.Link{}} {
		inf, err := c.GetInformer(context.Background(), obj)
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

func (s *routeSync) mark() {
	select {
	case s.dirty <- struct{}{}:
	default: // a pass is already due; it will see this change too
	}
}

// Run starts the cache and applies routes until ctx ends.
func (s *routeSync) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.cache.Start(ctx) }()
	if !s.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("gatewayd: route cache: %w", err)
		default:
			return ctx.Err()
		}
	}
	s.mark()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-s.dirty:
			err := s.apply(ctx)
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

// Synced reports whether routes have been applied from synced caches once.
func (s *routeSync) Synced() error {
	if !s.synced.Load() {
		return errors.New("mirror and link caches not synced")
	}
	return nil
}

func (s *routeSync) apply(ctx context.Context) error {
	var links ferryv1.LinkList
	if err := s.cache.List(ctx, &links, client.InNamespace(s.namespace)); err != nil {
		return err
	}
	var svcs corev1.ServiceList
	if err := s.cache.List(ctx, &svcs); err != nil {
		return err
	}
	lp := make([]*ferryv1.Link, len(links.Items))
	for i := range links.Items {
		lp[i] = &links.Items[i]
	}
	sp := make([]*corev1.Service, len(svcs.Items))
	for i := range svcs.Items {
		sp[i] = &svcs.Items[i]
	}
	remotes, problems := Remotes(s.mesh, lp)
	routes, rp := Routes(sp, lp, s.ports)
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
