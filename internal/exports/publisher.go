package exports

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
)

// Publisher holds the current Set and publishes new ones. It is the
// ExportSource the feed and the gateway's authorizer read; the Watcher
// feeds it from Kubernetes, tests feed it directly.
//
// Current is lock-free, because the gateway reads it on every stream it
// authorizes; Publish and Apply serialize writers.
type Publisher struct {
	mu  sync.Mutex
	cur atomic.Pointer[Set]
	log changeLog
}

// NewPublisher returns a publisher whose current Set is empty and not synced.
func NewPublisher() *Publisher {
	p := &Publisher{}
	p.cur.Store(&Set{exports: iradix.New[Export](), statuses: iradix.New[Status](), next: make(chan struct{})})
	return p
}

// Current returns the current Set.
func (p *Publisher) Current() *Set { return p.cur.Load() }

// Publish makes exports and statuses the whole current Set, marked synced,
// if they differ from it (or if it was not yet synced), and reports
// whether it did. It costs O(n): it is for a first publish and for tests.
// A change to some keys is Apply's.
func (p *Publisher) Publish(exports map[Key]Export, statuses map[Key]Status) bool {
	et, st := iradix.New[Export]().Txn(), iradix.New[Status]().Txn()
	for k, e := range exports {
		et.Insert(treeKey(k), e)
	}
	for k, s := range statuses {
		st.Insert(treeKey(k), s)
	}
	exps, sts := et.CommitOnly(), st.CommitOnly()
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.cur.Load()
	changed := diffTrees(cur.exports, exps)
	statusChanged := diffStatuses(cur.statuses, sts)
	if cur.Synced && len(changed) == 0 && len(statusChanged) == 0 {
		return false
	}
	p.store(cur, exps, sts, changed, slices.Concat(changed, statusChanged))
	return true
}

// Change is the new state of one key: its export and its ServiceExport's
// status, nil where there is none.
type Change struct {
	Key    Key
	Export *Export
	Status *Status
}

// Apply publishes the current Set with changes applied, if that differs
// from it (or if it was not yet synced), and reports whether it did. It
// costs O(len(changes) · log n).
func (p *Publisher) Apply(changes []Change) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.cur.Load()
	et, st := cur.exports.Txn(), cur.statuses.Txn()
	var changed, touched []Key
	for _, c := range changes {
		tk := treeKey(c.Key)
		o, had := et.Get(tk)
		exportDiffers := had != (c.Export != nil) || (had && !o.Equal(c.Export))
		os, hadSt := st.Get(tk)
		statusDiffers := hadSt != (c.Status != nil) || (hadSt && !os.Equal(c.Status))
		if !exportDiffers && !statusDiffers {
			continue
		}
		touched = append(touched, c.Key)
		if exportDiffers {
			changed = append(changed, c.Key)
			if c.Export != nil {
				et.Insert(tk, *c.Export)
			} else {
				et.Delete(tk)
			}
		}
		if statusDiffers {
			if c.Status != nil {
				st.Insert(tk, *c.Status)
			} else {
				st.Delete(tk)
			}
		}
	}
	if cur.Synced && len(touched) == 0 {
		return false
	}
	SortKeys(changed)
	p.store(cur, et.CommitOnly(), st.CommitOnly(), changed, touched)
	return true
}

// store makes the next Set after cur current and wakes cur's readers,
// having first logged the keys whose export or status it changes
// (KeysChangedSince). p.mu is held.
func (p *Publisher) store(cur *Set, exps *iradix.Tree[Export], sts *iradix.Tree[Status], changed, touched []Key) {
	p.log.record(cur.Generation+1, touched)
	p.cur.Store(&Set{
		Generation: cur.Generation + 1,
		Synced:     true,
		exports:    exps,
		statuses:   sts,
		changed:    changed,
		next:       make(chan struct{}),
	})
	close(cur.next)
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
