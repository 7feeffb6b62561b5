package clusterset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/slim"
	"ferry.dev/ferry/internal/writer"
)

// Defaults for Options.
const (
	DefaultControllerName   = "ferry-clusterset"
	DefaultWriteConcurrency = 16
	reconcileTimeout        = 2 * time.Minute
)

// Options configure the Reconciler. Zero values take the defaults.
type Options struct {
	// Gateway is the local gateway Service, whose EndpointSlices give the
	// clusterset slices' addresses. Default ferry-system/ferry-gateway.
	Gateway types.NamespacedName
	// Ports is the clusterset egress port range. Default 49000-49999.
	Ports contract.Range
	// ClaimsNamespace holds the port claims (internal/claims) and the
	// Links. Default ferry-system.
	ClaimsNamespace string
	// LocalCluster is this cluster's name and LocalExports its own export
	// set: a service this cluster exports too joins the clusterset with
	// this cluster among its clusters. Nil LocalExports: none.
	LocalCluster string
	LocalExports LocalExports
	// Client writes and reads (through the cache). Default the manager's.
	Client client.Client
	// Registry receives the metrics. Nil registers nothing.
	Registry           prometheus.Registerer
	Logger             *slog.Logger
	WriteConcurrency   int
	ControllerName     string
	SkipNameValidation bool
	// ConsistencyInterval: see DefaultConsistencyInterval.
	ConsistencyInterval time.Duration
	// BatchKeys: see DefaultBatchKeys.
	BatchKeys int
}

// LocalExports is this cluster's export set (*exportwatch.Watcher).
type LocalExports interface{ Current() *exports.Set }

// Reconciler keeps the clusterset objects equal to Desired of the mirrors.
type Reconciler struct {
	opts     Options
	c        client.Client
	log      *slog.Logger
	recorder events.EventRecorder
	writes   *prometheus.CounterVec
	// blockers holds the foreign objects in the way, so that their change
	// or deletion triggers a reconcile, and the problems already announced.
	// The reconciler has one owner, "".
	blockers writer.Blockers
	// retry paces the reconciles while claims wait for their holder to go.
	retry claims.Retry
	// routes are the Gateway API route kinds the cluster serves.
	routes routeKinds
	// affinityErrors are the bad affinities already announced.
	affinityErrors map[Key]string

	claims  claims.Reader
	pending pendingKeys
	passes  *prometheus.HistogramVec
	// Only the one reconcile (MaxConcurrentReconciles 1) touches these.
	basis    string
	lastFull time.Time
	tally    problemTally
}

// request is the one work item: passes are serialised, as egress ports are
// allocated from one range for all services; what changed is in pending.
var request = reconcile.Request{NamespacedName: types.NamespacedName{Name: "clusterset"}}

// ConfigureManager keeps clusterset-labelled Services and EndpointSlices
// whole in the cache, which importer.ConfigureManager (to be called first)
// otherwise slims to their metadata as foreign objects.
func ConfigureManager(o *manager.Options) {
	for obj, bo := range o.Cache.ByObject {
		switch obj.(type) {
		case *corev1.Service, *discoveryv1.EndpointSlice:
			bo.Transform = keepLabelled(bo.Transform)
			o.Cache.ByObject[obj] = bo
		}
	}
}

func keepLabelled(next toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		if o, ok := obj.(client.Object); ok {
			if _, mine := o.GetLabels()[contract.LabelClusterset]; mine {
				slim.Metadata(o)
				return o, nil
			}
		}
		if next == nil {
			return obj, nil
		}
		return next(obj)
	}
}

// Default sets every zero field but Client to its default. Setup calls it
// (after taking the manager's client): the reconciler owns its options.
func (o *Options) Default() {
	if o.Gateway.Name == "" {
		o.Gateway = types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}
	}
	if o.Ports == (contract.Range{}) {
		o.Ports = contract.DefaultClustersetRange()
	}
	o.ClaimsNamespace = cmp.Or(o.ClaimsNamespace, contract.SystemNamespace)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.WriteConcurrency = cmp.Or(o.WriteConcurrency, DefaultWriteConcurrency)
	o.ControllerName = cmp.Or(o.ControllerName, DefaultControllerName)
	o.ConsistencyInterval = cmp.Or(o.ConsistencyInterval, DefaultConsistencyInterval)
	o.BatchKeys = cmp.Or(o.BatchKeys, DefaultBatchKeys)
}

// Setup adds the Reconciler to mgr (leader-only, like every controller).
func Setup(mgr manager.Manager, opts Options) (*Reconciler, error) {
	if opts.Client == nil {
		opts.Client = mgr.GetClient()
	}
	opts.Default()
	if err := opts.Ports.Validate(); err != nil {
		return nil, fmt.Errorf("clusterset ports: %w", err)
	}
	r := &Reconciler{
		opts: opts, c: opts.Client, log: opts.Logger, recorder: mgr.GetEventRecorder(contract.ManagedBy),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_clusterset_writes_total",
			Help: "API writes by the clusterset reconciler, by kind and verb.",
		}, []string{"kind", "verb"}),
		passes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_clusterset_pass_duration_seconds",
			Help:    "Duration of a clusterset reconcile pass, by mode: full (every service) or scoped (the services that changed).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"mode"}),
	}
	r.pending.touch(true)
	if opts.Registry != nil {
		for _, c := range []prometheus.Collector{r.writes, r.passes} {
			if err := opts.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("clusterset metrics: %w", err)
			}
		}
	}
	if err := addIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("clusterset: %w", err)
	}
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("clusterset: %w", err)
	}
	kinds, err := servedRouteKinds(mgr.GetRESTMapper(), cs.AuthorizationV1().SelfSubjectAccessReviews(), opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("clusterset: %w", err)
	}
	r.routes = kinds
	if !kinds.any() {
		r.log.Info("Gateway API routes are not served here (no gateway.networking.k8s.io/v1 TCPRoute or HTTPRoute): clusterset services take the default split, and their ServiceImports' affinity")
	}
	enqueue := handler.EnqueueRequestsFromMapFunc(r.mapObject)
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		r.pending.touch(true)
		return []reconcile.Request{request}
	})
	b := builder.ControllerManagedBy(mgr)
	if kinds.tcp {
		b = b.Watches(&gwv1.TCPRoute{}, all)
	}
	if kinds.http {
		b = b.Watches(&gwv1.HTTPRoute{}, all)
	}
	err = b.
		Named(opts.ControllerName).
		Watches(&corev1.Service{}, enqueue).
		Watches(&discoveryv1.EndpointSlice{}, enqueue).
		Watches(&mcsv1beta1.ServiceImport{}, enqueue).
		WatchesRawSource(crsource.Func(r.localChanges)).
		// Which mirrors count, and which ports are free, are in the claims.
		// A mirror's claims are written before it, so its own event marks
		// its service pending; the wake alone computes nothing, and what
		// else changes the claims is for the consistency check.
		Watches(&corev1.ConfigMap{}, claims.Handler(func([]claims.Owner) []reconcile.Request { return []reconcile.Request{request} })).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: 1,
			SkipNameValidation:      ptr.To(opts.SkipNameValidation),
			ReconciliationTimeout:   reconcileTimeout,
		}).
		WithLogConstructor(func(*reconcile.Request) logr.Logger { return logr.FromSlogHandler(opts.Logger.Handler()) }).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("clusterset controller: %w", err)
	}
	return r, nil
}

// localChanges wakes the reconciler when this cluster's export set
// changes: this cluster starts or stops exporting a service, or an
// export's properties or readiness change.
func (r *Reconciler) localChanges(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	if r.opts.LocalExports == nil {
		return nil
	}
	go func() {
		seen := r.opts.LocalExports.Current()
		for seen != nil {
			select {
			case <-ctx.Done():
				return
			case <-seen.Changed():
			}
			next := r.opts.LocalExports.Current()
			// Every export has clusterset objects, the local-only ones
			// included (their ServiceImport).
			if changed := next.ChangedSince(seen); len(changed) > 0 {
				keys := make([]Key, len(changed))
				for i, k := range changed {
					keys[i] = Key{Namespace: k.Namespace, Service: k.Name}
				}
				r.pending.touch(next.Synced != seen.Synced, keys...)
				q.Add(request)
			}
			seen = next
		}
	}()
	return nil
}

// mapObject wakes the reconciler for the objects it reads: mirrors and
// their slices, clusterset objects, the gateway's slices, and foreign
// objects in the way.
func (r *Reconciler) mapObject(ctx context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	_, mine := l[contract.LabelClusterset]
	_, mirrored := mirror.OwnerOf(obj)
	_, isSlice := obj.(*discoveryv1.EndpointSlice)
	gateway := isSlice && obj.GetNamespace() == r.opts.Gateway.Namespace && l[discoveryv1.LabelServiceName] == r.opts.Gateway.Name
	blocking := r.blockers.Blocks(writer.ObjectKey(writer.KindOf(r.c.Scheme(), obj), obj.GetNamespace(), obj.GetName()))
	if !mine && !mirrored && !gateway && !blocking {
		return nil
	}
	if k, ok := r.keyOf(ctx, obj); ok && !gateway && !blocking {
		r.pending.touch(false, k)
	} else {
		r.pending.touch(true)
	}
	return []reconcile.Request{request}
}

// Reconcile brings the clusterset objects to the desired state: of every
// service (a full pass), or of only those whose objects, mirrors or local
// exports changed since the last pass (scoped). A pass is full when an
// event concerns every service (the gateway's addresses, a route, a
// foreign object in the way), when a route may name a service in scope,
// and every ConsistencyInterval; a pass with nothing pending computes
// nothing. A pass takes at most Options.BatchKeys keys, and the next one
// follows at once while any are left.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	all, keys, more := r.pending.take(r.opts.BatchKeys)
	res, deferred, err := r.pass(ctx, all, keys)
	if err != nil {
		// What this pass took is not known to be done: recompute all.
		r.pending.touch(true)
		return res, err
	}
	if more || deferred {
		res.RequeueAfter = nextBatch
	}
	return res, nil
}

// pass computes and writes the desired state of keys, or of every service
// when all (or when the shared state asks for it). deferred is true when
// it wrote only the first Options.BatchKeys services of those it had to
// write and left the others pending.
func (r *Reconciler) pass(ctx context.Context, all bool, keys []Key) (_ reconcile.Result, deferred bool, _ error) {
	began := time.Now()
	sh, err := r.observeShared(ctx)
	if err != nil {
		return reconcile.Result{}, false, err
	}
	full := all || sh.basis != r.basis || began.Sub(r.lastFull) >= r.opts.ConsistencyInterval || routesTouch(sh.routes, keys)
	if !full && len(keys) == 0 {
		return reconcile.Result{RequeueAfter: r.opts.ConsistencyInterval - began.Sub(r.lastFull)}, false, nil
	}
	var in Input
	var have Objects
	if full {
		in, have, err = r.observeAll(ctx)
	} else {
		in, have, err = r.observeKeys(ctx, keys)
	}
	if err != nil {
		return reconcile.Result{}, false, err
	}
	var scoped []Key
	if !full {
		scoped = keys
	}
	sh.fill(&in, &have, scoped)
	lookup := &foreignLookup{ctx: ctx, c: r.c}
	in.Foreign = lookup.foreign
	st := Desired(in)
	if lookup.err != nil {
		return reconcile.Result{}, false, fmt.Errorf("check clusterset names: %w", lookup.err)
	}
	var scope func(mirror.PortKey) bool
	if full {
		r.tally.reset()
	} else {
		scope = scopeOf(keys)
		r.tally.forget(keys)
	}
	r.tally.add(st.Problems, lookup.seen)
	problems, seen := r.tally.all()
	r.note(ctx, problems, seen)
	r.noteAffinity(st.Steering.AffinityErrors, have.Imports, keys, full)

	// The ports are recorded before any object that uses them is written;
	// a conflict fails the reconcile, which runs again on fresh state.
	mine := in.Claimed
	if scope != nil {
		mine = map[mirror.PortKey]int32{}
		for k, p := range in.Claimed {
			if scope(k) {
				mine[k] = p
			}
		}
	}
	ch, pending := claims.Plan(claims.Clusterset, mirror.CurrentPorts(st.Services), mine, r.serviceGone(ctx))
	if !ch.Empty(sh.snap) {
		if err := claims.Commit(ctx, r.c, r.opts.ClaimsNamespace, sh.snap, ch); err != nil {
			return reconcile.Result{}, false, fmt.Errorf("clusterset port claims: %w", err)
		}
		r.writes.WithLabelValues("ConfigMap", "update").Inc()
	}
	requeue := r.retry.After(claims.Clusterset, pending)
	if requeue > 0 {
		r.pending.touch(full, keys...)
	}

	st.Now = metav1.Now()
	ops := Diff(st, have)
	// A scoped pass has at most BatchKeys keys; a full pass may have every
	// service to write, and writes the first BatchKeys.
	batch, later := firstKeys(ops, r.opts.BatchKeys)
	if len(later) > 0 {
		r.pending.touch(false, later...)
		ops, deferred = inBatch(ops, batch), true
	}
	first, rest := splitImports(ops)
	created, err := r.apply(ctx, first)
	if err == nil && len(created) > 0 {
		// New Services have their ClusterIPs now: compute the imports
		// again so spec.ips is written with them, not one reconcile later.
		in.Current = append(in.Current, created...)
		again := Desired(in)
		again.Now = st.Now
		_, rest = splitImports(inBatch(Diff(again, have), batch))
	}
	if err == nil {
		_, err = r.apply(ctx, rest)
	}
	mode := "scoped"
	if full {
		mode = "full"
		// Route statuses depend on nothing written above: one namespace's
		// failing write must not hold back every route's status.
		routeOps := RouteStatusOps(st.Steering.Statuses, have.Routes, time.Now())
		if _, rerr := r.apply(ctx, routeOps); rerr != nil {
			err = errors.Join(err, rerr)
		}
		ops = append(ops, routeOps...)
		if err == nil {
			r.basis, r.lastFull = sh.basis, began
		}
	}
	r.passes.WithLabelValues(mode).Observe(time.Since(began).Seconds())
	if len(ops) > 0 {
		r.log.Debug("reconciled clusterset services", "mode", mode, "keys", len(keys), "services", len(st.Services),
			"writes", len(ops), "deferred", deferred, "err", err)
	}
	untilCheck := r.opts.ConsistencyInterval - time.Since(r.lastFull)
	if requeue == 0 || untilCheck < requeue {
		requeue = max(untilCheck, time.Second)
	}
	if err != nil {
		// controller-runtime ignores a result beside an error (and says so
		// in the log): the error's backoff is the retry.
		return reconcile.Result{}, deferred, err
	}
	return reconcile.Result{RequeueAfter: requeue}, deferred, nil
}

// serviceGone answers claims.Plan from the cache.
func (r *Reconciler) serviceGone(ctx context.Context) func(mirror.PortKey, int32) bool {
	return func(k mirror.PortKey, egress int32) bool {
		var s corev1.Service
		err := r.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Service}, &s)
		return claims.Gone(&s, err, k, egress)
	}
}

// foreignLookup answers Input.Foreign from the cache. Errors other than
// NotFound are kept, and the name counted as taken, so that a name is never
// taken as free when it could not be checked.
type foreignLookup struct {
	ctx  context.Context
	c    client.Reader
	err  error
	seen map[string]client.Object // "Kind ns/name" of foreign objects found
}

func (l *foreignLookup) foreign(kind, ns, name string) bool {
	var obj client.Object
	switch kind {
	case KindService:
		obj = &corev1.Service{}
	case KindEndpointSlice:
		obj = &discoveryv1.EndpointSlice{}
	default:
		obj = &mcsv1beta1.ServiceImport{}
	}
	err := l.c.Get(l.ctx, types.NamespacedName{Namespace: ns, Name: name}, obj, &client.GetOptions{UnsafeDisableDeepCopy: ptr.To(true)})
	switch {
	case apierrors.IsNotFound(err):
		return false
	case err != nil:
		l.err = err
		return true
	}
	if _, mine := obj.GetLabels()[contract.LabelClusterset]; mine {
		return false
	}
	if l.seen == nil {
		l.seen = map[string]client.Object{}
	}
	l.seen[kind+" "+ns+"/"+name] = obj
	return true
}

// note remembers the foreign objects in the way and reports each new
// problem once: a log line, and an Event on the foreign object.
func (r *Reconciler) note(_ context.Context, problems []Problem, seen map[string]client.Object) {
	var blockers, keys []string
	byKey := map[string]Problem{}
	for _, p := range problems {
		if obj := seen[p.Object]; obj != nil {
			blockers = append(blockers, p.Object)
		}
		k := p.Key.String() + "|" + p.Reason + "|" + p.Object
		keys = append(keys, k)
		byKey[k] = p
	}
	for _, k := range r.blockers.Note("", blockers, keys) {
		switch p := byKey[k]; p.Reason {
		case NameTaken:
			msg := fmt.Sprintf("%s is not owned by Ferry (no %s label), so clusterset service %s is not written; rename or delete it (Ferry never adopts objects)",
				p.Object, contract.LabelClusterset, p.Key)
			r.log.Warn("clusterset name taken by an object Ferry does not own", "service", p.Key.String(), "object", p.Object)
			if obj := seen[p.Object]; obj != nil {
				r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, NameTaken, "Import", "%s", msg)
			}
		case PortsExhausted:
			r.log.Error("clusterset port range exhausted", "service", p.Key.String(), "range", r.opts.Ports.String())
		}
	}
}

// apply performs the writes, WriteConcurrency at a time, and returns the
// Services it created (as the API server returned them).
func (r *Reconciler) apply(ctx context.Context, ops []writer.Op) ([]*corev1.Service, error) {
	var (
		mu      sync.Mutex
		created []*corev1.Service
	)
	w := writer.Writer{
		Client: r.c, Concurrency: r.opts.WriteConcurrency,
		// Every error is reported: a reconcile writes few objects.
		MaxErrors: len(ops),
		After: func(op writer.Op) {
			r.writes.WithLabelValues(writer.KindOf(r.c.Scheme(), op.Object), string(op.Verb)).Inc()
			if s, ok := op.Object.(*corev1.Service); ok && op.Verb == writer.Create {
				mu.Lock()
				created = append(created, s)
				mu.Unlock()
			}
		},
	}
	err := w.Apply(ctx, ops)
	return created, err
}
