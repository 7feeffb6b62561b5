package endpoints

import (
	"fmt"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

const byService = "namespace/service"

// Index answers "ready endpoints of ns/svc:port" from shared informer caches,
// so a new stream costs a map lookup, not an API call.
type Index struct {
	services corelisters.ServiceLister
	slices   cache.Indexer
	synced   []cache.InformerSynced
}

// NewIndex registers the Service and EndpointSlice informers it needs on the
// factory; the caller starts the factory.
func NewIndex(f informers.SharedInformerFactory) (*Index, error) {
	svcInf := f.Core().V1().Services()
	sliceInf := f.Discovery().V1().EndpointSlices()
	err := sliceInf.Informer().AddIndexers(cache.Indexers{byService: func(obj any) ([]string, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			return nil, nil
		}
		return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
	}})
	if err != nil {
		return nil, fmt.Errorf("endpoints: index slices: %w", err)
	}
	return &Index{
		services: svcInf.Lister(),
		slices:   sliceInf.Informer().GetIndexer(),
		synced:   []cache.InformerSynced{svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
	}, nil
}

// HasSynced reports whether both caches have their initial lists.
func (x *Index) HasSynced() bool {
	for _, s := range x.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Endpoints returns the ready "ip:port" addresses behind namespace/service at
// Service port number port.
func (x *Index) Endpoints(namespace, service string, port int) ([]string, error) {
	svc, err := x.services.Services(namespace).Get(service)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, service, ErrNoSuchService)
	}
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	objs, err := x.slices.ByIndex(byService, namespace+"/"+service)
	if err != nil {
		return nil, fmt.Errorf("endpointslices of %s/%s: %w", namespace, service, err)
	}
	return Ready(svc, toSlices(objs), int32(port))
}

// ErrNoSuchService means the Service is not in the cache.
var ErrNoSuchService = fmt.Errorf("no such service")

func toSlices(objs []any) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, s)
		}
	}
	return out
}
