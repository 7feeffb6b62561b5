package importer

import (
	"context"
	"fmt"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
)

// Reconcile brings one Link's objects and status to the desired state. It
// reads only from the cache and writes only what differs.
func (im *Importer) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Namespace != im.opts.LinkNamespace {
		return reconcile.Result{}, nil
	}
	var link ferryv1.Link
	err := im.c.Get(ctx, req.NamespacedName, &link)
	switch {
	case apierrors.IsNotFound(err):
		// Objects labelled with a Link that does not exist are orphans (the
		// Link was removed while its finalizer could not run): remove them.
		requeue, err := im.cleanup(ctx, req.Name, nil)
		return reconcile.Result{RequeueAfter: requeue}, err
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("get link %s: %w", req.Name, err)
	case link.DeletionTimestamp != nil:
		requeue, err := im.cleanup(ctx, req.Name, &link)
		return reconcile.Result{RequeueAfter: requeue}, err
	}
	if !controllerutil.ContainsFinalizer(&link, ferryv1.Finalizer) {
		patch := client.MergeFromWithOptions(link.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(&link, ferryv1.Finalizer)
		if err := im.c.Patch(ctx, &link, patch); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer to link %s: %w", link.Name, err)
		}
		im.metrics.writes.WithLabelValues("Link", "patch", "finalizer").Inc()
	}
	// The Link's error count exists from its first reconcile, at zero, so
	// that rate() sees its first errors (an alert on them can fire).
	errs := im.metrics.reconcileErrors.WithLabelValues(link.Name)
	requeue, err := im.sync(ctx, &link)
	if err != nil {
		errs.Inc()
		im.log.Warn("reconcile link", "link", link.Name, "err", err)
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// outcome is what one sync learned, for status.
type outcome struct {
	feed      feedView
	health    healthView
	hasFeed   bool // a session exists
	idErr     error
	policyErr error
	state     mirror.State
	computed  bool // state was computed
	applyErr  error
}

func (im *Importer) sync(ctx context.Context, link *ferryv1.Link) (requeue time.Duration, _ error) {
	out := outcome{}
	pol, policyErr := mirror.LinkFrom(link)
	out.policyErr = policyErr
	id, idErr := im.gatewayID(link)
	out.idErr = idErr
	sess := im.ensureSession(link, id, idErr)
	// Taken before anything is read, so a change that lands during this
	// pass is pending again for the next one.
	all, keys := im.pending.take(link.Name)
	out.health.Level = mirror.Healthy
	if sess != nil {
		out.hasFeed = true
		out.feed = sess.state.meta()
		out.health = sess.health.view(im.opts.Clock.Now(), out.feed.LastMessage)
	}
	lm := im.memory.of(link.Name)
	if policyErr == nil {
		var err error
		requeue, err = im.pass(ctx, link, pol, sess, all, keys, lm, &out)
		if err != nil || out.applyErr != nil {
			// What this pass took is not known to be done: recompute all.
			im.pending.touch(link.Name, true)
		}
		if err != nil {
			return 0, err
		}
		out.state, out.computed = lm.tally.state(), true
		im.noteClashes(link, out.state.Problems)
	}
	statusErr := im.writeStatus(ctx, link, out)

	im.metrics.healthy.WithLabelValues(link.Name).Set(float64(out.health.Level))
	if out.computed && out.feed.Synced {
		im.metrics.imports.WithLabelValues(link.Name).Set(float64(out.state.Imported))
		if out.applyErr == nil && sess != nil {
			if lag := sess.state.reconciled(out.feed); lag > 0 {
				im.metrics.feedLag.WithLabelValues(link.Name).Observe(lag.Seconds())
			}
		}
	}
	if out.applyErr != nil {
		return 0, out.applyErr
	}
	return requeue, statusErr
}

// pass brings the Link's mirrors to the desired state: of every export
// (full), or of only the keys that changed since the last pass (scoped).
// A pass is full when asked to be, when anything every export depends on
// has changed (the basis), before the feed has synced, and every
// ConsistencyInterval; otherwise only keys are recomputed, and a pass
// with no keys computes nothing. The outcome lands in lm.tally.
func (im *Importer) pass(ctx context.Context, link *ferryv1.Link, pol mirror.Link, sess *session, all bool,
	keys []exports.Key, lm *linkMemory, out *outcome) (requeue time.Duration, _ error) {
	gw, err := im.gatewayAddresses(ctx)
	if err != nil {
		return 0, err
	}
	began := im.opts.Clock.Now()
	b := basis{generation: link.Generation, session: sess, synced: out.feed.Synced, health: out.health.Level,
		gateway: strings.Join(gw, ",")}
	full := all || !out.feed.Synced || b != lm.basis || began.Sub(lm.lastFull) >= im.opts.ConsistencyInterval
	if !full && len(keys) == 0 {
		return im.opts.ConsistencyInterval - began.Sub(lm.lastFull), nil
	}
	var st desiredState
	if full {
		if sess != nil {
			// A consistent copy of every export, taken with the view.
			out.feed = sess.state.snapshot()
		}
		st, err = im.desired(ctx, link, pol, gw, *out)
	} else {
		st, err = im.desiredScoped(ctx, link, pol, gw, *out, sess.state, keys)
	}
	if err != nil {
		return 0, err
	}
	ops := mirror.Diff(st.State, st.owned)
	computed := im.opts.Clock.Now()
	var pending int
	if !out.feed.Synced && len(st.mine) == 0 && len(st.owned.Services) > 0 {
		// Neither a snapshot nor a claim: the Services labelled with
		// this Link are from before the port claims, or forged. Nothing
		// here is known to be Ferry's, so nothing changes until the
		// feed has synced (then the former keep their ports).
		ops = nil
	} else {
		pending, out.applyErr = im.commitClaims(ctx, link.Name, st)
	}
	if out.applyErr == nil {
		out.applyErr = im.apply(ctx, ops)
	}
	mode := "scoped"
	if full {
		mode = "full"
		lm.tally.reset(st.State)
		if out.applyErr == nil {
			lm.basis, lm.lastFull = b, began
		}
	} else {
		lm.tally.set(keys, st.State)
	}
	im.metrics.passes.WithLabelValues(mode).Observe(im.opts.Clock.Since(began).Seconds())
	if out.applyErr == nil {
		// Ports whose holder is still being deleted are released by a
		// later reconcile; the delete's own event may be suppressed as
		// our echo, so ask for one.
		requeue = im.retry.After(claims.LinkOwner(link.Name), pending)
		if requeue > 0 {
			im.pending.touch(link.Name, full, keys...)
		}
	}
	if len(ops) > 0 {
		im.log.Debug("reconciled link", "link", link.Name, "mode", mode, "keys", len(keys), "writes", len(ops),
			"imported", st.Imported, "version", out.feed.Version, "synced", out.feed.Synced,
			"compute", computed.Sub(began), "apply", im.opts.Clock.Since(computed), "err", out.applyErr)
	}
	untilCheck := im.opts.ConsistencyInterval - im.opts.Clock.Since(lm.lastFull)
	if requeue == 0 || untilCheck < requeue {
		requeue = max(untilCheck, time.Second)
	}
	return requeue, nil
}

// desiredState is a mirror.State with the owned objects it was diffed
// against.
type desiredState struct {
	mirror.State
	owned mirror.Objects
	// claims is the port record as read, and mine this Link's claims in it
	// (in a scoped pass, only those of the keys it recomputes: the others
	// are neither claimed again nor released).
	claims claims.Snapshot
	mine   map[mirror.PortKey]int32
}

func (im *Importer) desired(ctx context.Context, link *ferryv1.Link, pol mirror.Link, gw []string, out outcome) (desiredState, error) {
	owned, err := im.ownedBy(ctx, link.Name)
	if err != nil {
		return desiredState{}, err
	}
	snap, err := im.claims.Read(ctx, im.c, im.opts.LinkNamespace)
	if err != nil {
		return desiredState{}, err
	}
	taken, mine := claims.Split(snap, claims.LinkOwner(link.Name))
	exps := out.feed.Exports
	if !out.feed.Synced {
		// No snapshot yet in this process: the mirrors themselves are the
		// best copy of the remote's state (see mirror.Recover), but only
		// those the claims vouch for. Anyone may label a Service; a forged
		// one recovered here would be claimed and routed.
		exps = mirror.Recover(vouched(owned, snap.Table, claims.LinkOwner(link.Name)))
	}
	in := mirror.Input{Link: pol, Exports: exps, Gateway: gw, Health: out.health.Level, Owned: owned, Claimed: mine}
	st, err := im.compute(ctx, link.Name, in, taken, nil)
	if err != nil {
		return desiredState{}, err
	}
	return desiredState{State: st, owned: owned, claims: snap, mine: mine}, nil
}

// compute completes in with what the cache says (the namespaces that
// exist, who holds a name) and runs mirror.Desired through the port ledger
// (see portLedger.desired for scope).
func (im *Importer) compute(ctx context.Context, link string, in mirror.Input, taken mirror.Taken,
	scope map[string]bool) (mirror.State, error) {
	nss, err := im.namespaces(ctx)
	if err != nil {
		return mirror.State{}, err
	}
	lookup := &cacheLookup{ctx: ctx, c: im.c}
	in.NamespaceExists = func(ns string) bool { return nss[ns] }
	in.Lookup, in.Ports = lookup, im.opts.Ports
	st := im.ledger.desired(link, in, taken, scope)
	if lookup.err != nil {
		return mirror.State{}, fmt.Errorf("check mirror names: %w", lookup.err)
	}
	return st, nil
}

// desiredScoped computes the desired state of keys only: their exports, the
// objects they own (found through the export index, not a list of the
// Link's), and their port claims. Every other claim of the Link stays held,
// and nothing outside keys is diffed, so nothing outside them is written.
func (im *Importer) desiredScoped(ctx context.Context, link *ferryv1.Link, pol mirror.Link, gw []string, out outcome,
	fs *feedState, keys []exports.Key) (desiredState, error) {
	owned, names, err := im.ownedFor(ctx, link.Name, pol.Cluster, keys)
	if err != nil {
		return desiredState{}, err
	}
	snap, err := im.claims.Read(ctx, im.c, im.opts.LinkNamespace)
	if err != nil {
		return desiredState{}, err
	}
	exps := make([]exports.Export, 0, len(keys))
	for _, k := range keys {
		if e, ok := fs.lookup(k); ok {
			exps = append(exps, e)
			// The host mirrors it may want are in scope too, so a
			// hostname that comes back keeps the port its claim holds.
			for _, h := range e.Hostnames {
				names[e.Namespace+"/"+contract.HostMirrorName(e.Name, pol.Cluster, h)] = true
			}
		}
	}
	// The claims of the scope's Services, and a view of every other claim
	// (this Link's outside the scope stay held): no copy of the record.
	scope := make([]claims.ServiceName, 0, len(names))
	for n := range names {
		ns, name, _ := strings.Cut(n, "/")
		scope = append(scope, claims.ServiceName{Namespace: ns, Name: name})
	}
	taken, mine := snap.View(claims.LinkOwner(link.Name), scope, func(ns, svc string) bool { return names[ns+"/"+svc] })
	in := mirror.Input{Link: pol, Exports: exps, Gateway: gw, Health: out.health.Level, Owned: owned, Claimed: mine}
	st, err := im.compute(ctx, link.Name, in, taken, names)
	if err != nil {
		return desiredState{}, err
	}
	return desiredState{State: st, owned: owned, claims: snap, mine: mine}, nil
}

// vouched keeps the owned objects whose Services the claims vouch for,
// with their slices.
func vouched(owned mirror.Objects, t claims.Table, owner claims.Owner) mirror.Objects {
	var out mirror.Objects
	keep := map[string]bool{}
	for _, s := range owned.Services {
		if t.Vouches(s, owner) {
			out.Services = append(out.Services, s)
			keep[s.Namespace+"/"+s.Name] = true
		}
	}
	for _, s := range owned.Slices {
		if keep[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] {
			out.Slices = append(out.Slices, s)
		}
	}
	return out
}

// gatewayID is the identity the remote gateway must present, by the one
// rule the gateway applies too (contract.LinkGatewayID).
func (im *Importer) gatewayID(l *ferryv1.Link) (identity.ID, error) {
	id, err := contract.LinkGatewayID(l.Spec.GatewayIdentity, l.Spec.ClusterName, im.opts.MeshDomain)
	if err != nil {
		return identity.ID{}, fmt.Errorf("spec: %w", err)
	}
	return id, nil
}

// ensureSession starts, keeps or restarts the Link's session to match its
// spec, and returns it (nil when the spec cannot be dialled).
func (im *Importer) ensureSession(l *ferryv1.Link, id identity.ID, idErr error) *session {
	im.mu.Lock()
	cur := im.sessions[l.Name]
	if cur != nil && idErr == nil && cur.key == sessionKey(l, id) {
		im.mu.Unlock()
		return cur
	}
	delete(im.sessions, l.Name)
	var next *session
	if idErr == nil && im.baseCtx.Err() == nil {
		name := l.Name
		next = startSession(im.baseCtx, l, id, sessionDeps{
			clock: im.opts.Clock, feed: im.opts.Feed, prober: im.opts.Prober, tls: im.opts.Identity,
			log: im.log, trigger: func() { im.enqueue(name) }, applied: im.opts.OnFeedChange,
			touch: func(all bool, keys ...exports.Key) {
				im.pending.touch(name, all, keys...)
				im.enqueue(name)
			},
			probed: func(d time.Duration, err error) { im.metrics.observeProbe(name, d, err) },
		})
		im.sessions[l.Name] = next
	}
	im.mu.Unlock()
	if cur != nil {
		// Outside the lock: a stopping session may still call enqueue.
		cur.stop()
	}
	return next
}

func (im *Importer) stopSession(link string) {
	im.mu.Lock()
	cur := im.sessions[link]
	delete(im.sessions, link)
	im.mu.Unlock()
	if cur != nil {
		cur.stop()
	}
}
