package importer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/mirror"
)

// Reasons for deletes that are not unexports.
const (
	reasonLinkDeleted = "link-deleted"
	reasonOrphan      = "orphan"
)

// maxReportedErrors bounds how many write errors one reconcile reports, so
// a broken API server does not produce a megabyte of status message.
const maxReportedErrors = 3

// apply performs the writes, WriteConcurrency at a time.
func (im *Importer) apply(ctx context.Context, ops []mirror.Op) error {
	if len(ops) == 0 {
		return nil
	}
	sem := make(chan struct{}, im.opts.WriteConcurrency)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed int
	)
	for _, op := range ops {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := im.write(ctx, op); err != nil {
				mu.Lock()
				failed++
				if len(errs) < maxReportedErrors {
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

func (im *Importer) write(ctx context.Context, op mirror.Op) error {
	obj, ok := op.Object.(client.Object)
	if !ok {
		return fmt.Errorf("unexpected object %T", op.Object)
	}
	var err error
	switch op.Verb {
	case mirror.Create:
		if err = im.c.Create(ctx, obj); err == nil {
			im.own.wrote(obj)
		}
	case mirror.Update:
		if err = im.c.Update(ctx, obj); err == nil {
			im.own.wrote(obj)
		}
	case mirror.Delete:
		uid := obj.GetUID()
		im.own.deleted(obj)
		err = im.c.Delete(ctx, obj, client.Preconditions{UID: &uid})
		if err == nil || apierrors.IsNotFound(err) {
			// Wake the Links this object blocked: the delete's watch
			// event is our echo and may be suppressed.
			for _, link := range im.blockedBy(obj) {
				im.enqueue(link)
			}
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s %s/%s: %w", op.Verb, kindOf(obj), obj.GetNamespace(), obj.GetName(), err)
	}
	im.metrics.writes.WithLabelValues(kindOf(obj), string(op.Verb), op.Reason).Inc()
	return nil
}

// kindOf names an object's kind without trusting TypeMeta, which objects
// read from the cache do not carry.
func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Service:
		return "Service"
	case *discoveryv1.EndpointSlice:
		return "EndpointSlice"
	case *ferryv1.Link:
		return "Link"
	}
	return fmt.Sprintf("%T", obj)
}

// cleanup removes everything a Link owns, then its finalizer. link is nil
// when the Link no longer exists (orphans).
func (im *Importer) cleanup(ctx context.Context, name string, link *ferryv1.Link) error {
	im.stopSession(name)
	im.ledger.release(name)
	im.metrics.forget(name)
	im.noteClashes(&ferryv1.Link{}, nil, name)
	owned, err := im.ownedBy(ctx, name)
	if err != nil {
		return err
	}
	reason := reasonOrphan
	if link != nil {
		reason = reasonLinkDeleted
	}
	var ops []mirror.Op
	for _, s := range owned.Slices {
		ops = append(ops, mirror.Op{Verb: mirror.Delete, Reason: reason, Object: s})
	}
	for _, s := range owned.Services {
		ops = append(ops, mirror.Op{Verb: mirror.Delete, Reason: reason, Object: s})
	}
	if len(ops) > 0 {
		im.log.Info("removing objects of a deleted link", "link", name, "objects", len(ops), "reason", reason)
	}
	if err := im.apply(ctx, ops); err != nil {
		return fmt.Errorf("clean up link %s: %w", name, err)
	}
	if link == nil || !controllerutil.ContainsFinalizer(link, ferryv1.Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(link.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(link, ferryv1.Finalizer)
	if err := im.c.Patch(ctx, link, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove finalizer of link %s: %w", name, err)
	}
	im.metrics.writes.WithLabelValues("Link", "patch", "finalizer").Inc()
	return nil
}

// noteClashes records which foreign objects block the Link's imports (so
// their deletion wakes the Link) and writes one Event per new clash.
// linkName overrides link.Name when the Link object is gone.
func (im *Importer) noteClashes(link *ferryv1.Link, problems []mirror.Problem, linkName ...string) {
	name := link.Name
	if len(linkName) > 0 {
		name = linkName[0]
	}
	now := map[string]mirror.Problem{}
	for _, p := range problems {
		if p.Reason == mirror.NameClash {
			now[p.Object] = p
		}
	}
	im.mu.Lock()
	for obj, links := range im.clashes {
		if _, still := now[obj]; !still && links[name] {
			delete(links, name)
			if len(links) == 0 {
				delete(im.clashes, obj)
			}
		}
	}
	var fresh []mirror.Problem
	for obj, p := range now {
		if im.clashes[obj] == nil {
			im.clashes[obj] = map[string]bool{}
		}
		im.clashes[obj][name] = true
		if !im.reported[name][obj] {
			fresh = append(fresh, p)
		}
	}
	if len(now) == 0 {
		delete(im.reported, name)
	} else {
		im.reported[name] = map[string]bool{}
		for obj := range now {
			im.reported[name][obj] = true
		}
	}
	im.mu.Unlock()
	if link.UID == "" {
		return
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Object < fresh[j].Object })
	for _, p := range fresh {
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
