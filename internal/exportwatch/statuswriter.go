package exportwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// ChangeSource is a SetSource that can also say which keys changed between
// two of its Sets (an exports.Publisher can, and so the Watcher). With one,
// the StatusWriter's pass after a change reads only the ServiceExports of
// the changed keys.
type ChangeSource interface {
	SetSource
	KeysChangedSince(prev, cur *exports.Set) ([]exports.Key, bool)
}

// Start syncs on every change until ctx ends. Failed writes are retried at
// the next change, trigger or resync.
//
// A pass after a change of the set syncs only the keys it changed when the
// Source is a ChangeSource, so one change costs O(keys changed), not
// O(ServiceExports). The first pass, and every pass after a trigger (peers
// changed: any key's conflict may have), a resync or an error, syncs every
// key, as does any pass whose changes the Source no longer knows.
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
	var p pass
	full := true
	for {
		set := w.Source.Current()
		if set.Synced {
			if n, err := w.syncPass(ctx, &p, set, full); err != nil {
				log.Warn("serviceexport status", "err", err, "writes", n)
				retry.Reset(DefaultRetryInterval)
			} else if n > 0 {
				log.Debug("serviceexport status", "writes", n)
			}
			full = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-set.Changed():
		case <-trigger:
			full = true
		case <-tick.C:
			full = true
		case <-retry.C:
			full = true
		}
	}
}

// pass is what the StatusWriter carries from one sync to the next.
type pass struct {
	// synced is the last Set every key was synced with, nil after an
	// error: the next pass then syncs every key.
	synced *exports.Set
	// behind are keys skipped because the Reader had not caught up with
	// the set; they are synced again at the next pass.
	behind []exports.Key
}

// syncPass syncs set, every key if full, else only what changed since
// p.synced, and updates p.
func (w *StatusWriter) syncPass(ctx context.Context, p *pass, set *exports.Set, full bool) (int, error) {
	var keys []exports.Key
	incremental := false
	if cs, ok := w.Source.(ChangeSource); ok && !full && p.synced != nil {
		keys, incremental = cs.KeysChangedSince(p.synced, set)
	}
	if !incremental {
		keys = set.StatusKeys()
	} else {
		keys = append(keys, p.behind...)
	}
	n, behind, err := w.syncKeys(ctx, set, keys)
	p.synced, p.behind = set, behind
	if err != nil {
		p.synced, p.behind = nil, nil
	}
	return n, err
}

// Sync makes every ServiceExport's conditions match set and returns how many
// status writes it made. It keeps going past errors and returns them joined.
func (w *StatusWriter) Sync(ctx context.Context, set *exports.Set) (int, error) {
	n, _, err := w.syncKeys(ctx, set, set.StatusKeys())
	return n, err
}

// syncKeys makes the conditions of the ServiceExports of keys match set
// (keys without a status in set have nothing to report on and are
// skipped). It returns the writes made and the keys the Reader was behind
// on.
func (w *StatusWriter) syncKeys(ctx context.Context, set *exports.Set, keys []exports.Key) (int, []exports.Key, error) {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	var errs []error
	var behind []exports.Key
	writes := 0
	for _, k := range slices.Compact(sortedCopy(keys)) {
		st, ok := set.Status(k)
		if !ok {
			continue
		}
		se := &mcsv1beta1.ServiceExport{}
		if err := w.Reader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, se); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("get %s: %w", k, err))
			}
			continue
		}
		if se.DeletionTimestamp != nil {
			continue
		}
		if se.Generation != st.Generation {
			// The set has not caught up with this object yet, or the Reader
			// not with the set: in the second case a later pass must look
			// again even if the key does not change.
			if se.Generation < st.Generation {
				behind = append(behind, k)
			}
			continue
		}
		in := ConditionInput{Status: st, LocalCluster: w.LocalCluster}
		if e, ok := set.Export(k); ok {
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
	return writes, behind, errors.Join(errs...)
}

func sortedCopy(keys []exports.Key) []exports.Key {
	out := slices.Clone(keys)
	exports.SortKeys(out)
	return out
}

func (w *StatusWriter) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger.With("component", "serviceexport-status")
	}
	return slog.Default().With("component", "serviceexport-status")
}
