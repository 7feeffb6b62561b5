package importer

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/writer"
)

// Reasons for deletes that are not unexports.
const (
	reasonLinkDeleted = "link-deleted"
	reasonOrphan      = "orphan"
)

// apply performs the writes, WriteConcurrency at a time, through the one
// write path (internal/writer).
func (im *Importer) apply(ctx context.Context, ops []writer.Op) error {
	w := writer.Writer{
		Client: im.c, Concurrency: im.opts.WriteConcurrency,
		Before: func(op writer.Op) {
			if op.Verb == writer.Delete {
				im.own.deleted(op.Object)
			}
		},
		After: func(op writer.Op) {
			switch {
			case op.Verb == writer.Create && isHostMirror(op.Object):
				// Not an echo to suppress: the API server has just given
				// the host mirror the address that its headless mirror's
				// slice must list, and only another pass can write it.
			case op.Verb == writer.Create, op.Verb == writer.Update:
				im.own.wrote(op.Object)
			case op.Verb == writer.Delete:
				// Wake the Links this object blocked: the delete's watch
				// event is our echo and may be suppressed.
				for _, link := range im.blockedBy(op.Object) {
					im.enqueue(link)
				}
			}
			im.metrics.writes.WithLabelValues(im.kindOf(op.Object), string(op.Verb), op.Reason).Inc()
		},
	}
	return w.Apply(ctx, ops)
}

// isHostMirror reports whether obj is a host mirror (docs/headless.md).
func isHostMirror(obj client.Object) bool {
	_, ok := mirror.Hostname(obj)
	_, svc := obj.(*corev1.Service)
	return ok && svc
}

// kindOf names an object's kind from the scheme: objects read from the
// cache carry no TypeMeta.
func (im *Importer) kindOf(obj client.Object) string { return writer.KindOf(im.c.Scheme(), obj) }

// cleanup removes everything a Link owns, then its finalizer. link is nil
// when the Link no longer exists (orphans).
func (im *Importer) cleanup(ctx context.Context, name string, link *ferryv1.Link) (requeue time.Duration, _ error) {
	im.stopSession(name)
	im.ledger.release(name)
	im.pending.forget(name)
	im.memory.forget(name)
	im.metrics.forget(name)
	im.noteClashes(&ferryv1.Link{}, nil, name)
	owned, err := im.ownedBy(ctx, name)
	if err != nil {
		return 0, err
	}
	reason := reasonOrphan
	if link != nil {
		reason = reasonLinkDeleted
	}
	var ops []writer.Op
	for _, s := range owned.Slices {
		ops = append(ops, writer.Op{Verb: writer.Delete, Reason: reason, Object: s})
	}
	for _, s := range owned.Services {
		ops = append(ops, writer.Op{Verb: writer.Delete, Reason: reason, Object: s})
	}
	if len(ops) > 0 {
		im.log.Info("removing objects of a deleted link", "link", name, "objects", len(ops), "reason", reason)
	}
	if err := im.apply(ctx, ops); err != nil {
		return 0, fmt.Errorf("clean up link %s: %w", name, err)
	}
	// Ports whose holder is gone are released now; the rest once it is.
	// That may take as long as someone else's finalizer holds an object,
	// so the Link does not wait for it: the claims outlive their Link,
	// and this reconcile, as an orphan's, keeps coming back for them (as
	// do the objects' own events, and every start of the controller).
	snap, err := im.claims.Read(ctx, im.c, im.opts.LinkNamespace)
	if err != nil {
		return 0, err
	}
	_, mine := claims.Split(snap, claims.LinkOwner(name))
	pending, err := im.commitClaims(ctx, name, desiredState{claims: snap, mine: mine})
	if err != nil {
		return 0, err
	}
	requeue = im.retry.After(claims.LinkOwner(name), pending)
	if link == nil || !controllerutil.ContainsFinalizer(link, ferryv1.Finalizer) {
		return requeue, nil
	}
	patch := client.MergeFromWithOptions(link.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(link, ferryv1.Finalizer)
	if err := im.c.Patch(ctx, link, patch); err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("remove finalizer of link %s: %w", name, err)
	}
	im.metrics.writes.WithLabelValues("Link", "patch", "finalizer").Inc()
	return requeue, nil
}

// noteClashes records which foreign objects block the Link's imports (so
// their deletion wakes the Link) and writes one Event per new clash.
// linkName overrides link.Name when the Link object is gone.
func (im *Importer) noteClashes(link *ferryv1.Link, problems []mirror.Problem, linkName ...string) {
	name := link.Name
	if len(linkName) > 0 {
		name = linkName[0]
	}
	var objs []string
	byObj := map[string]mirror.Problem{}
	for _, p := range problems {
		if p.Reason == mirror.NameClash {
			objs = append(objs, p.Object)
			byObj[p.Object] = p
		}
	}
	sort.Strings(objs)
	fresh := im.blockers.Note(name, objs, objs)
	if link.UID == "" {
		return
	}
	for _, obj := range fresh {
		p := byObj[obj]
		im.recorder.Eventf(link, nil, corev1.EventTypeWarning, string(mirror.NameClash), "Import",
			"%s", clashSentence(p))
		im.log.Warn("mirror name taken by an object Ferry does not own", "link", name, "object", p.Object,
			"export", p.Export.String(), "holder", p.Holder)
	}
}

// clashSentence says what clashes and what to do about it.
func clashSentence(p mirror.Problem) string {
	who := "is not owned by Ferry"
	if p.Holder != "" {
		who = fmt.Sprintf("belongs to Link %q", p.Holder)
	}
	return fmt.Sprintf("%s %s, so export %s is not imported; rename or delete that object (Ferry never changes objects it does not own)",
		p.Object, who, p.Export)
}
