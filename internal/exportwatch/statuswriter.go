package exportwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/exports"
)

// DefaultStatusResync is how often the StatusWriter compares every
// ServiceExport's conditions even when the export set did not change, so
// that a status someone else overwrote is repaired. It reads only the cache,
// so an idle resync costs no API call.
const DefaultStatusResync = 5 * time.Minute

// SetSource is what the StatusWriter reads: a Watcher or a Publisher.
type SetSource interface {
	Current() *exports.Set
}

// StatusWriter writes ServiceExport conditions (Valid, Ready, Conflict) in
// the controller. It is level-based: on every change of the export set (and
// every Resync) it computes each ServiceExport's desired conditions and
// writes the status only when they differ from what is stored, so an
// unchanged cluster costs zero writes. It is a controller-runtime Runnable
// that needs leader election.
type StatusWriter struct {
	// Source provides statuses and exports; Reader reads ServiceExports
	// (normally the Watcher's cache); Client writes their status.
	Source SetSource
	Reader client.Reader
	Client client.Client
	// LocalCluster names this cluster, for conflict tie-breaking.
	LocalCluster string
	// Peers, if set, returns other clusters' exports of key, for the
	// Conflict condition. Call Trigger when its answer may have changed.
	Peers  func(exports.Key) []PeerExport
	Logger *slog.Logger
	// Resync and Now: zero means DefaultStatusResync and time.Now.
	Resync time.Duration
	Now    func() time.Time

	once    sync.Once
	trigger chan struct{}
}

// NeedLeaderElection is true: only the leader writes status.
func (w *StatusWriter) NeedLeaderElection() bool { return true }

// Trigger asks for a sync soon, e.g. when peers changed.
func (w *StatusWriter) Trigger() {
	select {
	case w.triggerCh() <- struct{}{}:
	default:
	}
}

func (w *StatusWriter) triggerCh() chan struct{} {
	// Made lazily so that a struct literal is ready to use.
	w.once.Do(func() { w.trigger = make(chan struct{}, 1) })
	return w.trigger
}

// Start syncs on every change until ctx ends. Failed writes are retried at
// the next change, trigger or resync.
func (w *StatusWriter) Start(ctx context.Context) error {
	log := w.logger()
	resync := w.Resync
	if resync <= 0 {
		resync = DefaultStatusResync
	}
	trigger := w.triggerCh()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	retry := time.NewTimer(0)
	retry.Stop()
	for {
		set := w.Source.Current()
		if set.Synced {
			if n, err := w.Sync(ctx, set); err != nil {
				log.Warn("serviceexport status", "err", err, "writes", n)
				retry.Reset(DefaultRetryInterval)
			} else if n > 0 {
				log.Debug("serviceexport status", "writes", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-set.Changed():
		case <-trigger:
		case <-tick.C:
		case <-retry.C:
		}
	}
}

// Sync makes every ServiceExport's conditions match set and returns how many
// status writes it made. It keeps going past errors and returns them joined.
func (w *StatusWriter) Sync(ctx context.Context, set *exports.Set) (int, error) {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	var errs []error
	writes := 0
	for k, st := range set.Statuses {
		se := &mcsv1beta1.ServiceExport{}
		if err := w.Reader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, se); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("get %s: %w", k, err))
			}
			continue
		}
		if se.DeletionTimestamp != nil || se.Generation != st.Generation {
			continue // the set has not caught up with this object yet
		}
		in := ConditionInput{Status: st, LocalCluster: w.LocalCluster}
		if e, ok := set.Exports[k]; ok {
			in.Export = &e
		}
		if w.Peers != nil {
			in.Peers = w.Peers(k)
		}
		merged, changed := MergeConditions(se.Status.Conditions, DesiredConditions(in), metav1.NewTime(now()))
		if !changed {
			continue
		}
		// Never mutate the cached object.
		upd := se.DeepCopy()
		upd.Status.Conditions = merged
		if err := w.Client.Status().Update(ctx, upd); err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted meanwhile: nothing to report on
			}
			// A conflict means the cache was behind; it is returned like any
			// error so that Start retries after DefaultRetryInterval.
			errs = append(errs, fmt.Errorf("update %s status: %w", k, err))
			continue
		}
		writes++
	}
	return writes, errors.Join(errs...)
}

func (w *StatusWriter) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger.With("component", "serviceexport-status")
	}
	return slog.Default().With("component", "serviceexport-status")
}
