package exportwatch

import (
	"cmp"
	"maps"
	"slices"
	"sync"

	"ferry.dev/ferry/internal/exports"
)

// maxChangeLog bounds how many publishes the Watcher remembers the keys of.
// A reader further behind (the StatusWriter after a long write pass) falls
// back to reading every key, which is always correct.
const maxChangeLog = 256

// keyResult is one recomputed key: its export (nil: none) and status (nil:
// no ServiceExport, or it is being deleted).
type keyResult struct {
	key    exports.Key
	export *exports.Export
	status *exports.Status
}

// applyResults returns cur's exports and statuses with results applied, and
// the keys whose export or status differs from cur's, in results' order. It
// returns nil maps when nothing differs, so an unchanged recompute costs
// O(len(results)).
//
// Otherwise both maps are copied whole: a published Set is immutable and
// is its own map, so building the next one is O(exports) (see
// BenchmarkRecompute). Only a persistent map in package exports can remove
// that copy.
func applyResults(cur *exports.Set, results []keyResult) (next map[exports.Key]exports.Export, statuses map[exports.Key]exports.Status, changed []exports.Key) {
	for _, r := range results {
		o, had := cur.Exports[r.key]
		os, hadSt := cur.Statuses[r.key]
		if had == (r.export != nil) && (r.export == nil || o.Equal(r.export)) &&
			hadSt == (r.status != nil) && (r.status == nil || os.Equal(r.status)) {
			continue
		}
		if next == nil {
			next, statuses = maps.Clone(cur.Exports), maps.Clone(cur.Statuses)
		}
		changed = append(changed, r.key)
		if r.export != nil {
			next[r.key] = *r.export
		} else {
			delete(next, r.key)
		}
		if r.status != nil {
			statuses[r.key] = *r.status
		} else {
			delete(statuses, r.key)
		}
	}
	return next, statuses, changed
}

// changeLog remembers which keys' export or status each recent publish
// changed, by the generation of the Set it made. Set.ChangedSince lists
// export changes only; the StatusWriter also needs the keys whose status
// alone changed (a ServiceExport that became invalid), and with this log
// it syncs those keys rather than every ServiceExport.
type changeLog struct {
	mu   sync.Mutex
	gens []genKeys // ascending generations, at most maxChangeLog
}

type genKeys struct {
	gen  uint64
	keys []exports.Key
}

// record notes that the Set of generation gen changed keys. It is called
// before that Set is published, so that no reader can see the Set without
// its keys; forget undoes it if the publish did not happen.
func (l *changeLog) record(gen uint64, keys []exports.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.gens); n > 0 && l.gens[n-1].gen >= gen {
		// Generations go back only if someone else published through the
		// Publisher: what was recorded may be wrong, so drop it all.
		l.gens = nil
	}
	if len(l.gens) == maxChangeLog {
		l.gens = slices.Delete(l.gens, 0, maxChangeLog/4) // amortised
	}
	l.gens = append(l.gens, genKeys{gen: gen, keys: keys})
}

func (l *changeLog) forget(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gens = slices.DeleteFunc(l.gens, func(g genKeys) bool { return g.gen == gen })
}

func (l *changeLog) since(from, to uint64) ([]exports.Key, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return keysSince(l.gens, from, to)
}

// keysSince returns the keys changed by generations from+1 through to,
// sorted and distinct, or false if gens does not cover every one of them.
func keysSince(gens []genKeys, from, to uint64) ([]exports.Key, bool) {
	if from > to {
		return nil, false
	}
	if from == to {
		return nil, true
	}
	i, _ := slices.BinarySearchFunc(gens, from+1, func(g genKeys, gen uint64) int { return cmp.Compare(g.gen, gen) })
	var keys []exports.Key
	want := from + 1
	for ; i < len(gens) && gens[i].gen <= to; i++ {
		if gens[i].gen != want {
			return nil, false
		}
		keys = append(keys, gens[i].keys...)
		want++
	}
	if want != to+1 {
		return nil, false
	}
	exports.SortKeys(keys)
	return slices.Compact(keys), true
}

// KeysChangedSince returns the keys whose export or status differs between
// prev and cur, two Sets this Watcher published, or false when it no
// longer knows (prev is nil, too old, or not before cur): the caller must
// then look at every key. Its cost is O(keys changed), not O(exports).
func (w *Watcher) KeysChangedSince(prev, cur *exports.Set) ([]exports.Key, bool) {
	if prev == nil || cur == nil {
		return nil, false
	}
	return w.changes.since(prev.Generation, cur.Generation)
}
