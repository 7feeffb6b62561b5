package certsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// Watcher follows one Secret, namespace/name, through an informer scoped to
// that name. The zero value is not usable; use NewWatcher.
type Watcher struct {
	namespace, name string
	informer        toolscache.SharedIndexInformer
	changed         chan struct{}
}

// NewWatcher prepares a watcher for namespace/name. Nothing talks to the API
// server until Start.
func NewWatcher(kube kubernetes.Interface, namespace, name string) *Watcher {
	// The selector is not an optimisation: RBAC can grant list and watch
	// with resourceNames only because the request names the object this way.
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	secrets := kube.CoreV1().Secrets(namespace)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return secrets.Watch(ctx, o)
		},
	}
	w := &Watcher{
		namespace: namespace,
		name:      name,
		informer: toolscache.NewSharedIndexInformerWithOptions(lw, &corev1.Secret{}, toolscache.SharedIndexInformerOptions{
			ObjectDescription: "secret " + namespace + "/" + name,
		}),
		// One slot: notifications coalesce, and readers always look at the
		// latest state anyway (level-based), so none is ever lost.
		changed: make(chan struct{}, 1),
	}
	notify := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	_, _ = w.informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	})
	return w
}

// Start runs the informer in the background until ctx ends.
func (w *Watcher) Start(ctx context.Context) { go w.informer.RunWithContext(ctx) }

// WaitForSync blocks until the first list has been seen or ctx ends.
func (w *Watcher) WaitForSync(ctx context.Context) error {
	if !toolscache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
		return fmt.Errorf("certsecret: secret %s/%s: cache did not sync: %w", w.namespace, w.name, context.Cause(ctx))
	}
	return nil
}

// HasSynced reports whether the first list has been seen.
func (w *Watcher) HasSynced() bool { return w.informer.HasSynced() }

// Changed receives a value after the Secret was added, updated or deleted.
// Several changes may be delivered as one.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// Secret returns the cached Secret, or nil if it does not exist. The result
// is shared with the cache: callers must not modify it (DeepCopy first).
func (w *Watcher) Secret() *corev1.Secret {
	obj, ok, err := w.informer.GetStore().GetByKey(w.namespace + "/" + w.name)
	if err != nil || !ok {
		return nil
	}
	s, _ := obj.(*corev1.Secret)
	return s
}

// Namespace and Name identify the watched Secret.
func (w *Watcher) Namespace() string { return w.namespace }

// Name is the watched Secret's name.
func (w *Watcher) Name() string { return w.name }
