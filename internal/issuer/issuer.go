package issuer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Issuer issues and rotates the gateway's and the controller's leaves.
// Create it with New, hand Controller() to whatever needs the controller's
// identity, then run Start (or add it to a controller-runtime manager).
type Issuer struct {
	opts       Options
	kube       kubernetes.Interface
	issuerW    *certsecret.Watcher
	gatewayW   *certsecret.Watcher
	controller *identity.Source
	gatewayID  identity.ID
	ctrlID     identity.ID
	metrics    *metrics
	log        *slog.Logger
	recorder   events.EventRecorder

	// notReady holds nil once the controller has a valid leaf (see Ready).
	notReady atomic.Pointer[error]

	// Loop state, touched only by the goroutine in Start.
	ca         *identity.CA
	bundle     *identity.Bundle
	issuerFP   [sha256.Size]byte
	issuerErr  error  // why there is no usable issuer
	issuerNote string // last issuer state reported, for transition Events
	ctrlReason string // last controller condition reason reported
	gwReason   string // last gateway condition reason reported ("" before any)
	notOurs    string // resourceVersion of a foreign gateway Secret already reported
	written    *written
	backoff    time.Duration
	leader     bool
}

// written remembers our last write until the cache has caught up with it,
// so a pass that runs before the watch event does not act on the version
// we just replaced (it would fail on resourceVersion anyway, but needlessly).
type written struct {
	staleRV string // the cached version the write replaced ("" for a create)
	obj     *corev1.Secret
	at      time.Time
}

// New prepares an Issuer. Nothing talks to the API server until Start.
func New(kube kubernetes.Interface, opts Options) (*Issuer, error) {
	if kube == nil {
		return nil, errors.New("issuer: no Kubernetes client")
	}
	opts.Default()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	i := &Issuer{
		opts:       opts,
		kube:       kube,
		issuerW:    certsecret.NewWatcher(kube, opts.Namespace, opts.IssuerSecret),
		gatewayW:   certsecret.NewWatcher(kube, opts.Namespace, opts.GatewaySecret),
		controller: &identity.Source{Now: opts.Clock.Now},
		gatewayID:  contract.GatewayID(opts.MeshDomain, opts.Cluster),
		ctrlID:     contract.ControllerID(opts.MeshDomain, opts.Cluster),
		metrics:    m,
		log:        opts.Logger.With("component", "issuer"),
		recorder:   opts.Recorder,
		leader:     opts.Elected == nil,
	}
	notYet := errors.New("controller certificate not issued yet")
	i.notReady.Store(&notYet)
	return i, nil
}

// Controller is this replica's own identity (contract.ControllerID). It is
// empty until the issuer has been loaded; TLS configs built from it read it
// on every handshake, so they can be made before that.
func (i *Issuer) Controller() *identity.Source { return i.controller }

// Ready returns nil while the controller holds a valid leaf of its own, or
// why not.
func (i *Issuer) Ready() error {
	if p := i.notReady.Load(); *p != nil {
		return *p
	}
	c := i.controller.Certificate()
	if c == nil || !i.opts.Clock.Now().Before(c.Leaf.NotAfter) {
		return fmt.Errorf("controller certificate expired: %w", identity.ErrExpired)
	}
	return nil
}

// NeedLeaderElection is false: every replica needs its controller leaf.
// Writes to the gateway Secret wait for Options.Elected instead.
func (i *Issuer) NeedLeaderElection() bool { return false }

// Run is Start, for callers that are not controller-runtime managers.
func (i *Issuer) Run(ctx context.Context) error { return i.Start(ctx) }

// Start runs until ctx ends. It returns an error only if it cannot start;
// a missing or broken issuer is reported and waited out, never fatal.
func (i *Issuer) Start(ctx context.Context) error {
	if i.recorder == nil {
		b := events.NewBroadcaster(&events.EventSinkImpl{Interface: i.kube.EventsV1()})
		if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
			return fmt.Errorf("issuer: start event recorder: %w", err)
		}
		defer b.Shutdown()
		i.recorder = b.NewRecorder(clientgoscheme.Scheme, ReportingController)
	}
	i.issuerW.Start(ctx)
	i.gatewayW.Start(ctx)
	for _, w := range []*certsecret.Watcher{i.issuerW, i.gatewayW} {
		if err := w.WaitForSync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	elected := i.opts.Elected
	timer := i.opts.Clock.NewTimer(0)
	defer timer.Stop()
	for {
		next := i.pass(ctx)
		d := next.Sub(i.opts.Clock.Now())
		if d <= 0 {
			// The clock passed next during the pass. Going round at once,
			// rather than arming a zero timer, also suits fake clocks, whose
			// zero timers fire only on the next step.
			continue
		}
		rearm(timer, d)
		select {
		case <-ctx.Done():
			return nil
		case <-i.issuerW.Changed():
		case <-i.gatewayW.Changed():
		case <-timer.C():
		case <-elected:
			i.leader, elected = true, nil
			i.log.Info("elected; managing the gateway certificate", "secret", i.opts.Namespace+"/"+i.opts.GatewaySecret)
		}
	}
}

// rearm sets t to fire after d. A tick that fired while the loop was woken
// by something else is drained first: it is stale, and a fake clock's timer
// channel holds one tick, so a second tick would block the clock's Step,
// under its lock, while this loop waits in Now for that lock.
func rearm(t clock.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
	t.Reset(d)
}

// pass brings everything in line with the current Secrets and time, and
// returns when the next pass is due at the latest.
func (i *Issuer) pass(ctx context.Context) time.Time {
	now := i.opts.Clock.Now()
	i.loadIssuer(now)
	p := plan{now: now, next: now.Add(i.opts.RecheckInterval)}
	i.syncController(&p)
	if i.leader {
		i.syncGateway(ctx, &p)
	}
	if p.failed {
		if i.backoff == 0 {
			i.backoff = i.opts.RetryInterval
		} else {
			i.backoff = min(2*i.backoff, i.opts.MaxRetryInterval)
		}
		p.wake(now.Add(i.backoff))
	} else {
		i.backoff = 0
	}
	return p.next
}

// plan collects, over one pass, the earliest time something will change
// and whether anything failed (which schedules a retry with backoff).
type plan struct {
	now    time.Time
	next   time.Time
	failed bool
}

// wake asks for a pass at t. Past moments are ignored: whatever they
// change has been seen by this pass already.
func (p *plan) wake(t time.Time) {
	if t.After(p.now) && t.Before(p.next) {
		p.next = t
	}
}

func (i *Issuer) event(regarding *corev1.ObjectReference, eventtype, reason, action, note string) {
	if len(note) > maxEventNote {
		note = note[:maxEventNote]
	}
	i.recorder.Eventf(regarding, nil, eventtype, reason, action, "%s", note)
}

func (i *Issuer) secretRef(name string, s *corev1.Secret) *corev1.ObjectReference {
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Secret", Namespace: i.opts.Namespace, Name: name}
	if s != nil {
		ref.UID, ref.ResourceVersion = s.UID, s.ResourceVersion
	}
	return ref
}
