package exportwatch

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/slim"
)

func labelsSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("exportwatch: selector %q: %w", s, err)
	}
	return sel, nil
}

// slimService drops what Compute never reads from cached Services:
// annotations (kubectl's last-applied copy can be as large as the object),
// and all but the name and labels of a Service Ferry wrote (a mirror or a
// clusterset Service), which Compute only refuses to export. An importing
// cluster holds two of those per import, and this cache is the exporting
// side's, in the same processes as the importing side's caches of them.
func slimService(in any) (any, error) {
	s, ok := in.(*corev1.Service)
	if !ok {
		return in, nil
	}
	s.Annotations = nil
	slim.Metadata(s)
	if ferryOwned(s.Labels) {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{
			Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
			Labels: s.Labels, DeletionTimestamp: s.DeletionTimestamp,
		}}, nil
	}
	return s, nil
}

// ferryOwned says whether labels mark an object Ferry writes when it
// imports: a mirror's or a clusterset object's. It is the test computeOne
// refuses by, so a Service slimmed here is one Compute refuses.
func ferryOwned(labels map[string]string) bool {
	return labels[contract.LabelLink] != "" || labels[contract.LabelClusterset] != ""
}

// addHandlers registers event handlers that only mark keys dirty.
func (w *Watcher) addHandlers(ctx context.Context) error {
	handlers := []struct {
		obj client.Object
		h   toolscache.ResourceEventHandler
	}{
		{&mcsv1beta1.ServiceExport{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { w.onServiceExport(o, false) },
			UpdateFunc: func(_, o any) { w.onServiceExport(o, false) },
			DeleteFunc: func(o any) { w.onServiceExport(o, true) },
		}},
		{&corev1.Service{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    w.onObject,
			UpdateFunc: func(_, o any) { w.onObject(o) },
			DeleteFunc: w.onObject,
		}},
		{&discoveryv1.EndpointSlice{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc: w.onSlice,
			UpdateFunc: func(old, o any) {
				w.onSlice(old) // the slice may have moved to another Service
				w.onSlice(o)
			},
			DeleteFunc: w.onSlice,
		}},
	}
	for _, h := range handlers {
		inf, err := w.cache.GetInformer(ctx, h.obj)
		if err != nil {
			return fmt.Errorf("exportwatch: informer %T: %w", h.obj, err)
		}
		if _, err := inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("exportwatch: handler %T: %w", h.obj, err)
		}
	}
	return nil
}

func objectOf(o any) client.Object {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	obj, _ := o.(client.Object)
	return obj
}

func (w *Watcher) onServiceExport(o any, deleted bool) {
	obj := objectOf(o)
	if obj == nil {
		return
	}
	k := exports.Key{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	w.mu.Lock()
	if deleted {
		delete(w.exported, k)
	} else {
		w.exported[k] = struct{}{}
	}
	w.mu.Unlock()
	w.mark(k)
}

func (w *Watcher) onObject(o any) {
	if obj := objectOf(o); obj != nil {
		w.markIfExported(exports.Key{Namespace: obj.GetNamespace(), Name: obj.GetName()})
	}
}

func (w *Watcher) onSlice(o any) {
	obj := objectOf(o)
	if obj == nil {
		return
	}
	if name := obj.GetLabels()[discoveryv1.LabelServiceName]; name != "" {
		w.markIfExported(exports.Key{Namespace: obj.GetNamespace(), Name: name})
	}
}
