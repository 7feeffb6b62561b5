package exportwatch

import (
	"cmp"
	"slices"
	"sync"

	"ferry.dev/ferry/internal/exports"
)

// maxChangeLog bounds how many publishes the Watcher remembers the keys of.
// A reader further behind (the StatusWriter after a long write pass) falls
// back to reading every key, which is always correct.
const maxChangeLog = 256

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

// record notes that the Set of generation gen changed keys. The Publisher
// calls it (Apply's before) ahead of making that Set current, so that no
// reader can see the Set without its keys.
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
