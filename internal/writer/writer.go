package writer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Verb is what an Op does.
type Verb string

// Verbs. UpdateStatus writes only the status subresource.
const (
	Create       Verb = "create"
	Update       Verb = "update"
	UpdateStatus Verb = "update-status"
	Delete       Verb = "delete"
)

// Op is one write. For Update and UpdateStatus, Object is a copy of the
// existing object with the desired fields set (its resourceVersion guards
// the write); for Delete it is the existing object (its UID and
// resourceVersion are the delete's preconditions; an object already being
// deleted is skipped). Status, on a Create or Update, asks for Object's status to
// be written through the status subresource afterwards, since the spec
// write ignores it. Reason says why, for metrics.
type Op struct {
	Verb   Verb
	Object client.Object
	Reason string
	Status bool
}

// Defaults.
const (
	// DefaultConcurrency is how many writes run at once: enough to hide the
	// API server's latency, few enough not to trip its priority and
	// fairness limits.
	DefaultConcurrency = 16
	// DefaultMaxErrors bounds how many write errors one Apply reports, so a
	// broken API server does not produce a megabyte of status message.
	DefaultMaxErrors = 3
)

// Writer performs Ops against Client. The zero Concurrency and MaxErrors
// mean the defaults.
type Writer struct {
	Client      client.Client
	Concurrency int
	MaxErrors   int
	// Before, if set, is called before each write. Deletes use it to record
	// the delete before its watch event can arrive.
	Before func(Op)
	// After, if set, is called after each write that succeeded (a delete of
	// an object already gone counts), with the object as the API server
	// returned it, and once more with Verb UpdateStatus for a status write
	// that an Op's Status asked for. Calls are concurrent.
	After func(Op)
}

// Apply performs ops, Concurrency at a time, and returns the errors joined
// (at most MaxErrors of them, then a count). It stops starting writes when
// ctx ends.
func (w *Writer) Apply(ctx context.Context, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	limit, maxErrs := w.Concurrency, w.MaxErrors
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	if maxErrs <= 0 {
		maxErrs = DefaultMaxErrors
	}
	sem := make(chan struct{}, limit)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed int
	)
	for _, op := range ops {
		if op.Verb == Delete && op.Object.GetDeletionTimestamp() != nil {
			// Already being deleted: a delete would change nothing, and an
			// object held by someone else's finalizer would cost a write on
			// every pass.
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := w.write(ctx, op); err != nil {
				mu.Lock()
				failed++
				if len(errs) < maxErrs {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more write errors", failed-len(errs)))
	}
	return errors.Join(errs...)
}

func (w *Writer) write(ctx context.Context, op Op) error {
	obj := op.Object
	var status client.Object
	if op.Status {
		// Kept aside: Create and Update overwrite obj with the server's
		// answer, whose status is the stored one.
		status = obj.DeepCopyObject().(client.Object)
	}
	if w.Before != nil {
		w.Before(op)
	}
	var err error
	switch op.Verb {
	case Create:
		err = w.Client.Create(ctx, obj)
	case Update:
		err = w.Client.Update(ctx, obj)
	case UpdateStatus:
		err = w.Client.Status().Update(ctx, obj)
	case Delete:
		// UID and resourceVersion: the delete lands only on the object as
		// it was when the decision was made, so a late delete (a leader
		// that resumed after a stall, docs/security.md finding 8) cannot
		// remove what a newer writer has since changed.
		uid, rv := obj.GetUID(), obj.GetResourceVersion()
		pre := client.Preconditions{UID: &uid}
		if rv != "" {
			pre.ResourceVersion = &rv
		}
		err = w.Client.Delete(ctx, obj, pre)
		if apierrors.IsNotFound(err) {
			err = nil
		}
	default:
		err = fmt.Errorf("unknown verb %q", op.Verb)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s/%s: %w", op.Verb, w.KindOf(obj), obj.GetNamespace(), obj.GetName(), err)
	}
	if w.After != nil {
		w.After(op)
	}
	if status == nil || op.Verb == Delete || op.Verb == UpdateStatus {
		return nil
	}
	// Write the status on the object just returned (fresh version).
	if err := copyStatus(obj, status); err != nil {
		return err
	}
	if err := w.Client.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("update status of %s %s/%s: %w", w.KindOf(obj), obj.GetNamespace(), obj.GetName(), err)
	}
	if w.After != nil {
		w.After(Op{Verb: UpdateStatus, Object: obj, Reason: op.Reason})
	}
	return nil
}

// KindOf names obj's kind from the client's scheme: objects read from a
// cache carry no TypeMeta, so it cannot be trusted.
func (w *Writer) KindOf(obj client.Object) string { return KindOf(w.Client.Scheme(), obj) }

// KindOf names obj's kind from scheme, or its Go type when the scheme does
// not know it.
func KindOf(scheme *runtime.Scheme, obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return fmt.Sprintf("%T", obj)
	}
	return gvk.Kind
}

// copyStatus sets dst's status to src's and leaves the rest of dst as it
// is. It goes through the unstructured form so that it works for any kind
// with a status subresource.
func copyStatus(dst, src client.Object) error {
	from, err := runtime.DefaultUnstructuredConverter.ToUnstructured(src)
	if err != nil {
		return fmt.Errorf("status of %T: %w", src, err)
	}
	to, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dst)
	if err != nil {
		return fmt.Errorf("%T: %w", dst, err)
	}
	to["status"] = from["status"]
	// Decoding into a zeroed object, so nothing of the old status survives.
	v := reflect.ValueOf(dst).Elem()
	v.Set(reflect.Zero(v.Type()))
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(to, dst); err != nil {
		return fmt.Errorf("%T: %w", dst, err)
	}
	return nil
}
