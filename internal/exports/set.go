package exports

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
)

// Set is one published state of the export set. A Set is immutable: readers
// may keep and share it without locks. Changed is closed when a newer Set
// is published, which is how subscribers learn of changes: they wait on it,
// then read the publisher's current Set. Intermediate Sets may be skipped,
// never lost, so a slow subscriber costs nothing and cannot block the
// publisher; there is no queue of events to overflow.
type Set struct {
	// Generation increases by one on every publish. It is local to the
	// publisher and is not the feed's version.
	Generation uint64
	// Synced is false until the caches behind the set have synced once.
	// Until then the set is empty and means "unknown", not "nothing
	// exported": never publish it to importers.
	Synced bool
	// Exports and Statuses must not be modified.
	Exports  map[Key]Export
	Statuses map[Key]Status

	// changed lists the keys whose export differs from Generation-1.
	changed []Key
	next    chan struct{}
}

// Changed is closed when a newer Set has been published.
func (s *Set) Changed() <-chan struct{} { return s.next }

// ChangedSince returns the keys whose export differs between prev and s,
// sorted. It is cheap when prev is s's immediate predecessor and falls back
// to a full comparison otherwise.
func (s *Set) ChangedSince(prev *Set) []Key {
	switch {
	case prev == s:
		return nil
	case prev != nil && prev.Generation+1 == s.Generation:
		return s.changed
	case prev == nil:
		return Diff(nil, s.Exports)
	}
	return Diff(prev.Exports, s.Exports)
}

// Publisher holds the current Set and publishes new ones. It is the
// ExportSource the feed and the gateway's authorizer read; the Watcher
// feeds it from Kubernetes, tests feed it directly.
//
// Current is lock-free, because the gateway reads it on every stream it
// authorizes; Publish serializes writers.
type Publisher struct {
	mu  sync.Mutex
	cur atomic.Pointer[Set]
}

// NewPublisher returns a publisher whose current Set is empty and not synced.
func NewPublisher() *Publisher {
	p := &Publisher{}
	p.cur.Store(&Set{Exports: map[Key]Export{}, Statuses: map[Key]Status{}, next: make(chan struct{})})
	return p
}

// Current returns the current Set.
func (p *Publisher) Current() *Set { return p.cur.Load() }

// Publish makes exports and statuses the current Set, marked synced, if they
// differ from it (or if it was not yet synced), and reports whether it did.
// The publisher takes ownership of both maps. hint, when non-nil, must list
// every key whose export or status may differ from the current Set; it
// makes the comparison cost O(len(hint)) instead of O(n).
func (p *Publisher) Publish(exports map[Key]Export, statuses map[Key]Status, hint []Key) bool {
	if exports == nil {
		exports = map[Key]Export{}
	}
	if statuses == nil {
		statuses = map[Key]Status{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.cur.Load()
	var changed []Key
	statusChanged := false
	if hint != nil {
		seen := make(map[Key]struct{}, len(hint))
		for _, k := range hint {
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			o, inOld := cur.Exports[k]
			n, inNew := exports[k]
			if inOld != inNew || (inNew && !o.Equal(&n)) {
				changed = append(changed, k)
			}
			os, inOld := cur.Statuses[k]
			ns, inNew := statuses[k]
			if inOld != inNew || (inNew && !os.Equal(&ns)) {
				statusChanged = true
			}
		}
		SortKeys(changed)
	} else {
		changed = Diff(cur.Exports, exports)
		statusChanged = !maps.EqualFunc(cur.Statuses, statuses, func(a, b Status) bool { return a.Equal(&b) })
	}
	if cur.Synced && len(changed) == 0 && !statusChanged {
		return false
	}
	p.cur.Store(&Set{
		Generation: cur.Generation + 1,
		Synced:     true,
		Exports:    exports,
		Statuses:   statuses,
		changed:    changed,
		next:       make(chan struct{}),
	})
	close(cur.next)
	return true
}

// Follow calls fn with src's current Set, and again after every change,
// until ctx ends; Sets that are not yet synced are skipped. Changes that
// happen while fn runs coalesce into one call with the latest Set. It is how
// a consumer such as the gateway's ingress authorizer keeps a derived view
// current without ever queueing events.
func Follow(ctx context.Context, src interface{ Current() *Set }, fn func(*Set)) {
	for {
		s := src.Current()
		if s.Synced {
			fn(s)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.Changed():
		}
	}
}
