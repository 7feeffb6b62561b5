package endpoints

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Index answers "ready endpoints of ns/svc:port" from an informer cache, so
// a new stream costs a lookup, not an API call. In the gateway the cache is
// the export watcher's, so Services and EndpointSlices are watched once. It
// serves only what the gateway may dial (safe.go): trusted slices, and no
// loopback, link-local, metadata or API server address.
type Index struct {
	r client.Reader
	// field is the cache's field index of EndpointSlices by the
	// kubernetes.io/service-name label.
	field string
	// api caches the API server's addresses, which every new stream checks
	// against: re-reading them per stream would add a List to the hot path.
	api atomic.Pointer[apiAddrs]
}

// APIServerRefresh is how long the API server's addresses are reused
// before they are read from the cache again. They change only when the
// control plane moves.
const APIServerRefresh = 10 * time.Second

type apiAddrs struct {
	set map[netip.Addr]bool
	at  time.Time
}

// apiServer returns the API server's addresses, read at most once per
// APIServerRefresh.
func (x *Index) apiServer(ctx context.Context) map[netip.Addr]bool {
	now := time.Now()
	if c := x.api.Load(); c != nil && now.Sub(c.at) < APIServerRefresh {
		return c.set
	}
	set := apiServerAddrs(ctx, x.r, x.field)
	x.api.Store(&apiAddrs{set: set, at: now})
	return set
}

// NewIndex serves Endpoints from r, which must be a cache with a field index
// named sliceByService over EndpointSlices' kubernetes.io/service-name
// label (exportwatch.IndexServiceName on the export watcher's).
func NewIndex(r client.Reader, sliceByService string) *Index {
	return &Index{r: r, field: sliceByService}
}

// Endpoints returns the ready "ip:port" addresses behind namespace/service at
// Service port number port.
func (x *Index) Endpoints(namespace, service string, port int) ([]string, error) {
	return x.lookup(namespace, service, func(svc *corev1.Service, trusted []*discoveryv1.EndpointSlice) ([]string, error) {
		return Ready(svc, trusted, int32(port))
	})
}

// HostEndpoints returns the ready "ip:port" addresses of the one pod whose
// EndpointSlice hostname is hostname, behind namespace/service at Service
// port number port (ReadyHost), with the same trust and address filtering
// as Endpoints: a hostname narrows the choice, it never widens it.
func (x *Index) HostEndpoints(namespace, service, hostname string, port int) ([]string, error) {
	return x.lookup(namespace, service, func(svc *corev1.Service, trusted []*discoveryv1.EndpointSlice) ([]string, error) {
		return ReadyHost(svc, trusted, int32(port), hostname)
	})
}

// lookup reads the Service and its trusted slices from the cache, lets pick
// choose addresses from them, and keeps those the gateway may dial.
func (x *Index) lookup(namespace, service string, pick func(*corev1.Service, []*discoveryv1.EndpointSlice) ([]string, error)) ([]string, error) {
	// A read from a synced cache does no I/O and cannot block, so it needs
	// no deadline of its own; the caller's stream has one.
	ctx := context.Background()
	var svc corev1.Service
	err := x.r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: service}, &svc)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, service, ErrNoSuchService)
	}
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := x.r.List(ctx, &slices, client.InNamespace(namespace), client.MatchingFields{x.field: service}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("endpointslices of %s/%s: %w", namespace, service, err)
	}
	var trusted []*discoveryv1.EndpointSlice
	for _, sl := range toSlices(slices.Items) {
		if Trusted(sl) {
			trusted = append(trusted, sl)
		}
	}
	addrs, err := pick(&svc, trusted)
	if err != nil {
		return nil, err
	}
	return safe(addrs, x.apiServer(ctx)), nil
}

// ErrNoSuchService means the Service is not in the cache.
var ErrNoSuchService = fmt.Errorf("no such service")

func toSlices(items []discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
