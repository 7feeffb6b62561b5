package importer

import (
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion (or, for deletes, the UID) of
// each write this importer made, so the watch event that merely echoes it
// does not cost another full reconcile of the Link: level-based still, since
// the reconcile that wrote it already knew the result. Anything else that
// touches the object (another writer, a relist) carries another version
// and passes. An entry is dropped when its echo arrives or is overwritten
// by the next write to the same object.
type ownWrites struct {
	mu sync.Mutex
	m  map[string]string
}

func newOwnWrites() *ownWrites { return &ownWrites{m: map[string]string{}} }

func ownKey(obj client.Object) string {
	// The Go type tells kinds apart without a scheme.
	return fmt.Sprintf("%T/%s/%s", obj, obj.GetNamespace(), obj.GetName())
}

func (w *ownWrites) wrote(obj client.Object) {
	w.mu.Lock()
	w.m[ownKey(obj)] = obj.GetResourceVersion()
	w.mu.Unlock()
}

func (w *ownWrites) deleted(obj client.Object) {
	w.mu.Lock()
	w.m[ownKey(obj)] = "delete:" + string(obj.GetUID())
	w.mu.Unlock()
}

// forgetDelete drops the record of a delete of obj.
func (w *ownWrites) forgetDelete(obj client.Object) {
	k := ownKey(obj)
	w.mu.Lock()
	if v, ok := w.m[k]; ok && v == "delete:"+string(obj.GetUID()) {
		delete(w.m, k)
	}
	w.mu.Unlock()
}

// echo reports (and forgets) whether an event shows exactly our write.
func (w *ownWrites) echo(obj client.Object, mark string) bool {
	k := ownKey(obj)
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.m[k]; ok && v == mark {
		delete(w.m, k)
		return true
	}
	return false
}

// notEcho passes every event but the echoes of our own writes, except the
// echo of a delete of an object that blocks another Link's import
// (blocks(obj)): that Link must look again once the cache no longer holds
// the object, and the delete event is the moment it does (the informer
// updates its store before it dispatches the event).
func (w *ownWrites) notEcho(blocks func(client.Object) bool) predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.echo(e.Object, e.Object.GetResourceVersion()) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectNew.GetDeletionTimestamp() != nil {
				// Our delete did not remove it (a finalizer holds it): its
				// removal, when it comes, is news that releases its ports,
				// not an echo.
				w.forgetDelete(e.ObjectNew)
			}
			return !w.echo(e.ObjectNew, e.ObjectNew.GetResourceVersion())
		},
		DeleteFunc: func(e event.DeleteEvent) bool {
			return !w.echo(e.Object, "delete:"+string(e.Object.GetUID())) || blocks(e.Object)
		},
	}
}
