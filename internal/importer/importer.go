package importer

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/exportwatch"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/writer"
)

// Defaults for Options.
const (
	// DefaultWriteConcurrency bounds the API writes one reconcile has in
	// flight. Writes are independent, and at ~2-5 ms each a serial initial
	// import of 1k exports (2k objects) would take seconds; 16 in flight
	// keep the client's rate limiter, not latency, the bound.
	DefaultWriteConcurrency = 16
	// DefaultQPS and DefaultBurst are the client rate limits the controller
	// sets (client-go's default, 5 QPS, would take over an hour for 10k
	// mirrors). An import of N exports costs 2N writes (Service and
	// EndpointSlice): the burst absorbs a 1k-export initial import (2k
	// writes) unthrottled, and 1000/s sustained puts 10k exports (20k
	// writes) at 20 s, inside the 30 s target. Overload protection is the
	// API server's job (API Priority and Fairness queues Ferry's requests
	// in their own flow), and steady state writes only what changed.
	DefaultQPS   = 1000
	DefaultBurst = 2000
	// DefaultMaxConcurrentLinks is how many Links reconcile at once.
	DefaultMaxConcurrentLinks = 4
	// DefaultControllerName names the controller (and its metrics).
	DefaultControllerName = "ferry-importer"
	// reconcileTimeout bounds one reconcile, so a stuck write or cache wait
	// cannot hold a Link's queue key forever.
	reconcileTimeout = 2 * time.Minute
	// eventReporter is the reportingController of the Events we write.
	eventReporter = contract.ManagedBy
)

// Options configure the importer. Zero values take the defaults.
type Options struct {
	// MeshDomain is the mesh's domain, to parse Links' gateway identities.
	MeshDomain string
	// LinkNamespace is where Links live. Default ferry-system.
	LinkNamespace string
	// Gateway is the local gateway Service, whose EndpointSlices give the
	// mirrors' endpoints. Default ferry-system/ferry-gateway.
	Gateway types.NamespacedName
	// Ports is the egress port range. Default 41000-48999.
	Ports contract.Range
	// Identity is the controller's own TLS identity, for the feed and the
	// default prober. It may be filled in after Setup (e.g. by the issuer):
	// TLS configs read it on every handshake.
	Identity *identity.Source
	// Feed opens a Link's feed. Nil reports every Link as not connected.
	Feed FeedDialer
	// OnFeedChange, if set, is called (and must not block) after any
	// Link's feed delivered an update: e.g. exportwatch.StatusWriter.Trigger,
	// whose Conflict condition reads Peers.
	OnFeedChange func()
	// Prober probes remote gateways. Default TLSProber{Source: Identity}.
	Prober Prober
	// Clock is injected for tests. Default the real clock.
	Clock clock.WithTicker
	// Registry receives the importer's metrics. Nil registers nothing.
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Client writes (and reads through the cache). Default the manager's
	// client. Tests wrap it to count writes.
	Client client.Client
	// WriteConcurrency and MaxConcurrentLinks: see the defaults.
	WriteConcurrency   int
	MaxConcurrentLinks int
	// ConsistencyInterval: see DefaultConsistencyInterval.
	ConsistencyInterval time.Duration
	// ControllerName; SkipNameValidation lets tests run several managers in
	// one process.
	ControllerName     string
	SkipNameValidation bool
}

// Default sets every zero field to its default. Setup calls it: the importer
// owns its options.
func (o *Options) Default() {
	if o.LinkNamespace == "" {
		o.LinkNamespace = contract.SystemNamespace
	}
	if o.Gateway.Name == "" {
		o.Gateway = types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}
	}
	if o.Ports == (contract.Range{}) {
		o.Ports = contract.DefaultEgressRange()
	}
	if o.MeshDomain == "" {
		o.MeshDomain = contract.DefaultMeshDomain
	}
	if o.Prober == nil {
		o.Prober = TLSProber{Source: o.Identity}
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WriteConcurrency <= 0 {
		o.WriteConcurrency = DefaultWriteConcurrency
	}
	if o.MaxConcurrentLinks <= 0 {
		o.MaxConcurrentLinks = DefaultMaxConcurrentLinks
	}
	if o.ConsistencyInterval <= 0 {
		o.ConsistencyInterval = DefaultConsistencyInterval
	}
	if o.ControllerName == "" {
		o.ControllerName = DefaultControllerName
	}
}

// Importer reconciles every Link's mirrors.
type Importer struct {
	opts     Options
	c        client.Client
	recorder events.EventRecorder
	log      *slog.Logger
	metrics  *metrics
	ledger   *portLedger
	own      *ownWrites
	claims   claims.Reader
	// pending is what changed per Link since its last pass; memory what
	// each Link's passes left behind (docs/importer.md, "Passes").
	pending *pending
	memory  *memory

	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	queue    workqueue.TypedRateLimitingInterface[reconcile.Request]
	sessions map[string]*session
	// blockers maps each foreign object that blocks an import to the Links
	// it blocks, so that its deletion wakes them, and holds the clashes
	// already announced, so an Event is written once per clash, not per
	// reconcile.
	blockers writer.Blockers
	// retry paces the reconciles of Links whose claims wait for their
	// holder to go.
	retry claims.Retry
}

// Setup adds the importer to mgr, whose options went through
// ConfigureManager. The importer's sessions to remotes live in ctx (and
// end, too, when the manager stops or loses the lease).
func Setup(ctx context.Context, mgr manager.Manager, opts Options) (*Importer, error) {
	opts.Default()
	if err := opts.Ports.Validate(); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		opts.Client = mgr.GetClient()
	}
	m, err := newMetrics(opts.Registry, opts.Clock)
	if err != nil {
		return nil, fmt.Errorf("importer metrics: %w", err)
	}
	base, cancel := context.WithCancel(ctx)
	im := &Importer{
		opts: opts, c: opts.Client, log: opts.Logger, metrics: m, ledger: newPortLedger(), own: newOwnWrites(),
		pending: newPending(), memory: newMemory(),
		recorder: mgr.GetEventRecorder(eventReporter),
		baseCtx:  base, cancelBase: cancel,
		sessions: map[string]*session{},
	}
	m.age.source(im.eachContact)
	if err := mgr.Add(sessionRunner{im}); err != nil {
		return nil, err
	}
	err = builder.ControllerManagedBy(mgr).
		Named(opts.ControllerName).
		For(&ferryv1.Link{}, builder.WithPredicates(linkChanged())).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(im.mapObject), builder.WithPredicates(im.own.notEcho(im.blocks))).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(im.mapObject), builder.WithPredicates(im.own.notEcho(im.blocks))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(im.allLinksFull), builder.WithPredicates(namespaceChanged())).
		// A claim whose owner Link is gone (deleted while this controller
		// was down) is released by that Link's reconcile: every change of
		// a Link's claims, and every shard seen at start, wakes it.
		Watches(&corev1.ConfigMap{}, claims.Handler(im.claimOwners)).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			im.mu.Lock()
			im.queue = q
			im.mu.Unlock()
			return nil
		})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: opts.MaxConcurrentLinks,
			SkipNameValidation:      ptr.To(opts.SkipNameValidation),
			ReconciliationTimeout:   reconcileTimeout,
		}).
		WithLogConstructor(func(*reconcile.Request) logr.Logger { return logr.FromSlogHandler(opts.Logger.Handler()) }).
		Complete(im)
	if err != nil {
		return nil, fmt.Errorf("importer controller: %w", err)
	}
	return im, nil
}

// enqueue asks for a reconcile of a Link. The work queue dedupes, so
// bursts of feed updates become one reconcile; nothing is ever dropped.
func (im *Importer) enqueue(link string) {
	im.mu.Lock()
	q := im.queue
	im.mu.Unlock()
	if q != nil {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: im.opts.LinkNamespace, Name: link}})
	}
}

func (im *Importer) request(link string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: im.opts.LinkNamespace, Name: link}}
}

// mapObject maps a Service or EndpointSlice event to the Links it
// concerns: its owner, every Link for the gateway's own slices, and the
// Links whose import it blocks.
// The blocked Links are woken for owned objects too: a Link's mirror
// blocks every other Link that wants its name. An owned Service names the
// export it mirrors, so only that export is recomputed; any other event
// asks for a full pass.
func (im *Importer) mapObject(ctx context.Context, obj client.Object) []reconcile.Request {
	var out []reconcile.Request
	if link, ok := mirror.OwnerOf(obj); ok {
		if k, ok := im.exportOf(ctx, obj); ok {
			im.pending.touch(link, false, k)
		} else {
			im.pending.touch(link, true)
		}
		out = append(out, im.request(link))
	} else if _, isSlice := obj.(*discoveryv1.EndpointSlice); isSlice && obj.GetNamespace() == im.opts.Gateway.Namespace &&
		obj.GetLabels()[discoveryv1.LabelServiceName] == im.opts.Gateway.Name {
		return im.allLinksFull(ctx, obj)
	}
	for _, link := range im.blockedBy(obj) {
		im.pending.touch(link, true)
		out = append(out, im.request(link))
	}
	return out
}

// exportOf names the export an owned object belongs to: a Service says so
// in an annotation, and a slice belongs to the Service its label names
// (read from the cache, so it is known only while that Service exists).
func (im *Importer) exportOf(ctx context.Context, obj client.Object) (exports.Key, bool) {
	svc, isSvc := obj.(*corev1.Service)
	if !isSvc {
		name, ok := obj.GetLabels()[discoveryv1.LabelServiceName]
		if !ok {
			return exports.Key{}, false
		}
		svc = &corev1.Service{}
		err := im.c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, svc,
			&client.GetOptions{UnsafeDisableDeepCopy: ptr.To(true)})
		if err != nil || svc.Labels[contract.LabelLink] != obj.GetLabels()[contract.LabelLink] {
			return exports.Key{}, false
		}
	}
	remote, ok := svc.Annotations[contract.AnnotationRemoteService]
	return exports.Key{Namespace: obj.GetNamespace(), Name: remote}, ok
}

// claimOwners maps the owners whose port claims changed to their Links.
// Nothing is marked pending: only the Link's own passes change its claims
// (they are the controller's alone, and a conflict fails the pass, which
// then recomputes everything), so the wake matters for a Link that is gone
// (its claims are released) and at start. Anything else is for the
// consistency check.
func (im *Importer) claimOwners(owners []claims.Owner) []reconcile.Request {
	var out []reconcile.Request
	for _, o := range owners {
		if link, ok := o.Link(); ok {
			out = append(out, im.request(link))
		}
	}
	return out
}

// clashKey is obj's key in im.blockers (mirror.Problem.Object's format).
func (im *Importer) clashKey(obj client.Object) string {
	return writer.ObjectKey(im.kindOf(obj), obj.GetNamespace(), obj.GetName())
}

// blockedBy returns the Links whose import obj blocks.
func (im *Importer) blockedBy(obj client.Object) []string {
	return im.blockers.Owners(im.clashKey(obj))
}

// blocks reports whether obj blocks any Link's import.
func (im *Importer) blocks(obj client.Object) bool { return im.blockers.Blocks(im.clashKey(obj)) }

// allLinksFull asks every Link for a full pass: what changed (a namespace,
// the gateway's addresses) is shared by all their exports.
func (im *Importer) allLinksFull(ctx context.Context, obj client.Object) []reconcile.Request {
	reqs := im.allLinks(ctx, obj)
	for _, r := range reqs {
		im.pending.touch(r.Name, true)
	}
	return reqs
}

func (im *Importer) allLinks(ctx context.Context, _ client.Object) []reconcile.Request {
	var links ferryv1.LinkList
	if err := im.c.List(ctx, &links, client.InNamespace(im.opts.LinkNamespace), unsafeList); err != nil {
		im.log.Error("list links", "err", err)
		return nil
	}
	out := make([]reconcile.Request, 0, len(links.Items))
	for _, l := range links.Items {
		out = append(out, im.request(l.Name))
	}
	return out
}

// eachContact feeds the last-sync-age metric.
func (im *Importer) eachContact(yield func(string, time.Time)) {
	im.mu.Lock()
	defer im.mu.Unlock()
	for link, s := range im.sessions {
		yield(link, s.state.lastContact())
	}
}

// Peers returns the remote exports of key that the Links' feeds have
// delivered, one per Link: the other clusters' view of the same service
// (namespace sameness), for the MCS Conflict condition on local exports.
func (im *Importer) Peers(k exports.Key) []exportwatch.PeerExport {
	im.mu.Lock()
	sessions := make([]*session, 0, len(im.sessions))
	for _, s := range im.sessions {
		sessions = append(sessions, s)
	}
	im.mu.Unlock()
	var out []exportwatch.PeerExport
	for _, s := range sessions {
		if e, ok := s.state.lookup(k); ok {
			out = append(out, exportwatch.PeerExport{Cluster: s.cluster, Export: e})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out
}

// sessionRunner stops every session when the manager stops (or loses the
// lease): only the leader talks to remotes.
type sessionRunner struct{ im *Importer }

func (r sessionRunner) Start(ctx context.Context) error {
	<-ctx.Done()
	r.im.cancelBase()
	r.im.mu.Lock()
	sessions := r.im.sessions
	r.im.sessions = map[string]*session{}
	r.im.mu.Unlock()
	for _, s := range sessions {
		s.stop()
	}
	return nil
}

func (sessionRunner) NeedLeaderElection() bool { return true }
