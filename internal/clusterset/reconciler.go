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

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
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
}

// request is the one work item: every reconcile computes the whole state,
// as egress ports are allocated from one range for all services.
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
				o.SetManagedFields(nil)
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
	}
	if opts.Registry != nil {
		if err := opts.Registry.Register(r.writes); err != nil {
			return nil, fmt.Errorf("clusterset metrics: %w", err)
		}
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
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{request} })
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
			if len(next.ChangedSince(seen)) > 0 {
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
func (r *Reconciler) mapObject(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	_, mine := l[contract.LabelClusterset]
	_, mirrored := mirror.OwnerOf(obj)
	_, isSlice := obj.(*discoveryv1.EndpointSlice)
	gateway := isSlice && obj.GetNamespace() == r.opts.Gateway.Namespace && l[discoveryv1.LabelServiceName] == r.opts.Gateway.Name
	blocking := r.blockers.Blocks(writer.ObjectKey(writer.KindOf(r.c.Scheme(), obj), obj.GetNamespace(), obj.GetName()))
	if mine || mirrored || gateway || blocking {
		return []reconcile.Request{request}
	}
	return nil
}

// Reconcile computes the desired clusterset objects from the cache and
// writes what differs.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	in, have, snap, err := r.observe(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	lookup := &foreignLookup{ctx: ctx, c: r.c}
	in.Foreign = lookup.foreign
	st := Desired(in)
	if lookup.err != nil {
		return reconcile.Result{}, fmt.Errorf("check clusterset names: %w", lookup.err)
	}
	r.note(ctx, st.Problems, lookup.seen)
	r.noteAffinity(st.Steering.AffinityErrors, have.Imports)

	// The ports are recorded before any object that uses them is written;
	// a conflict fails the reconcile, which runs again on fresh state.
	ch, pending := claims.Plan(claims.Clusterset, mirror.CurrentPorts(st.Services), in.Claimed, r.serviceGone(ctx))
	if !ch.Empty(snap) {
		if err := claims.Commit(ctx, r.c, r.opts.ClaimsNamespace, snap, ch); err != nil {
			return reconcile.Result{}, fmt.Errorf("clusterset port claims: %w", err)
		}
		r.writes.WithLabelValues("ConfigMap", "update").Inc()
	}
	requeue := r.retry.After(claims.Clusterset, pending)

	ops := Diff(st, have)
	var first, rest []writer.Op
	for _, op := range ops {
		if _, isImport := op.Object.(*mcsv1beta1.ServiceImport); isImport || op.Verb == writer.Delete {
			rest = append(rest, op)
		} else {
			first = append(first, op)
		}
	}
	created, err := r.apply(ctx, first)
	if err == nil && len(created) > 0 {
		// New Services have their ClusterIPs now: compute the imports
		// again so spec.ips is written with them, not one reconcile later.
		in.Current = append(in.Current, created...)
		rest = rest[:0]
		for _, op := range Diff(Desired(in), have) {
			if _, isImport := op.Object.(*mcsv1beta1.ServiceImport); isImport || op.Verb == writer.Delete {
				rest = append(rest, op)
			}
		}
	}
	if err == nil {
		_, err = r.apply(ctx, rest)
	}
	// Route statuses depend on nothing written above: one namespace's
	// failing write must not hold back every route's status.
	routeOps := RouteStatusOps(st.Steering.Statuses, have.Routes, time.Now())
	if _, rerr := r.apply(ctx, routeOps); rerr != nil {
		err = errors.Join(err, rerr)
	}
	ops = append(ops, routeOps...)
	if len(ops) > 0 {
		r.log.Debug("reconciled clusterset services", "services", len(st.Services), "writes", len(ops), "err", err)
	}
	return reconcile.Result{RequeueAfter: requeue}, err
}

// serviceGone answers claims.Plan from the cache.
func (r *Reconciler) serviceGone(ctx context.Context) func(mirror.PortKey, int32) bool {
	return func(k mirror.PortKey, egress int32) bool {
		var s corev1.Service
		err := r.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Service}, &s)
		return claims.Gone(&s, err, k, egress)
	}
}

// observe reads the cache. Only mirrors whose every port the claims vouch
// for count: a tenant's copy of a mirror's labels must not put a cluster
// into a ServiceImport.
func (r *Reconciler) observe(ctx context.Context) (Input, Objects, claims.Snapshot, error) {
	in := Input{Ports: r.opts.Ports}
	var have Objects
	snap, err := claims.Read(ctx, r.c, r.opts.ClaimsNamespace)
	if err != nil {
		return in, have, snap, err
	}
	in.Taken, in.Claimed = claims.Split(snap, claims.Clusterset)
	if r.opts.LocalExports != nil {
		if cur := r.opts.LocalExports.Current(); cur != nil && cur.Synced {
			in.LocalCluster, in.Local = r.opts.LocalCluster, cur.Exports
		}
	}
	mirrored := client.HasLabels{contract.LabelLink, contract.LabelSourceCluster}
	mine := client.HasLabels{contract.LabelClusterset}
	var mirrors, current corev1.ServiceList
	var mirrorSlices, ownSlices, gwSlices discoveryv1.EndpointSliceList
	var imports mcsv1beta1.ServiceImportList
	for _, l := range []struct {
		what string
		list client.ObjectList
		opts []client.ListOption
	}{
		{"mirrors", &mirrors, []client.ListOption{mirrored}},
		{"mirror slices", &mirrorSlices, []client.ListOption{mirrored}},
		{"clusterset services", &current, []client.ListOption{mine}},
		{"clusterset slices", &ownSlices, []client.ListOption{mine}},
		{"service imports", &imports, []client.ListOption{mine}},
		{"gateway endpoints", &gwSlices, []client.ListOption{client.InNamespace(r.opts.Gateway.Namespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: r.opts.Gateway.Name}}},
	} {
		// The objects are the cache's own: never modified (Diff copies).
		if err := r.c.List(ctx, l.list, append(l.opts, client.UnsafeDisableDeepCopy)...); err != nil {
			return in, have, snap, fmt.Errorf("list %s: %w", l.what, err)
		}
	}
	var links ferryv1.LinkList
	if err := r.c.List(ctx, &links, client.InNamespace(r.opts.ClaimsNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return in, have, snap, fmt.Errorf("list links: %w", err)
	}
	linked := make(map[string]bool, len(links.Items))
	for _, l := range links.Items {
		linked[l.Name] = true
	}
	in.Mirrors = claimedMirrors(pointers(mirrors.Items), snap.Table, linked)
	in.MirrorSlices = pointers(mirrorSlices.Items)
	in.Current = pointers(current.Items)
	have.Services = in.Current
	have.Slices = pointers(ownSlices.Items)
	have.Imports = pointers(imports.Items)
	in.Affinity = map[Key]string{}
	for _, si := range have.Imports {
		if a := si.Annotations[contract.AnnotationAffinity]; a != "" {
			in.Affinity[Key{Namespace: si.Namespace, Service: si.Name}] = a
		}
	}
	routes, err := listRoutes(ctx, r.c, r.routes)
	if err != nil {
		return in, have, snap, err
	}
	have.Routes, in.Routes = routes, routes
	for _, s := range gwSlices.Items {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) && !ptr.Deref(ep.Conditions.Terminating, false) {
				in.Gateway = append(in.Gateway, ep.Addresses...)
			}
		}
	}
	return in, have, snap, nil
}

// claimedMirrors keeps the mirrors whose every port the claims hold for
// them (owner: the Link their label names), and those of existing Links
// that hold no claim at all: an install from before the claims, whose
// importer writes them only once the Link's feed has synced. Dropping those
// mirrors would delete and re-create every clusterset Service and
// ServiceImport (new ClusterIPs) on upgrade. A forged mirror counted that
// way gains no route (the gateway sends clusterset traffic only to claimed
// mirrors' clusters) and drops out at the Link's first sync; one that names
// no existing Link never counts. A headless mirror holds no port: it counts
// when a claimed host mirror of the same Link and service does
// (docs/headless.md).
func claimedMirrors(svcs []*corev1.Service, t claims.Table, links map[string]bool) []*corev1.Service {
	holders := map[claims.Owner]bool{}
	for _, c := range t {
		holders[c.Owner] = true
	}
	out := svcs[:0:0]
	// A headless mirror holds no port: its host mirrors vouch for it.
	hosted := map[mirror.Hosted]bool{}
	var headless []*corev1.Service
	for _, s := range svcs {
		link, ok := mirror.OwnerOf(s)
		if !ok {
			continue
		}
		owner := claims.LinkOwner(link)
		switch {
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			headless = append(headless, s)
		case t.Vouches(s, owner):
			out = append(out, s)
			if _, isHost := mirror.Hostname(s); isHost {
				hosted[mirror.HostedOf(s)] = true
			}
		case links[link] && !holders[owner]:
			out = append(out, s)
		}
	}
	for _, s := range headless {
		if hosted[mirror.HostedOf(s)] {
			out = append(out, s)
		}
	}
	return out
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
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
