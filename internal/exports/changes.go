package exports

import (
	"cmp"
	"slices"
	"sync"
)

// maxChangeLog bounds how many publishes the Publisher remembers the keys
// of. A reader further behind (a StatusWriter after a long write pass)
// falls back to reading every key, which is always correct.
const maxChangeLog = 256

// changeLog remembers which keys' export or status each recent publish
// changed, by the generation of the Set it made. Set.ChangedSince lists
// export changes only, and only since a Set's immediate predecessor; a
// status writer also needs the keys whose status alone changed (a
// ServiceExport that became invalid), and a reader that skipped Sets under
// load needs every key since the one it saw. Both then cost O(keys
// changed), not O(exports).
type changeLog struct {
	mu   sync.Mutex
	gens []genKeys // ascending generations, at most maxChangeLog
}

type genKeys struct {
	gen  uint64
	keys []Key
}

// record notes that the Set of generation gen changed keys. The Publisher
// calls it before it makes that Set current, so that no reader can see the
// Set without its keys.
func (l *changeLog) record(gen uint64, keys []Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.gens) == maxChangeLog {
		l.gens = slices.Delete(l.gens, 0, maxChangeLog/4) // amortised
	}
	l.gens = append(l.gens, genKeys{gen: gen, keys: keys})
}

func (l *changeLog) since(from, to uint64) ([]Key, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return keysSince(l.gens, from, to)
}

// keysSince returns the keys changed by generations from+1 through to,
// sorted and distinct, or false if gens does not cover every one of them.
func keysSince(gens []genKeys, from, to uint64) ([]Key, bool) {
	if from > to {
		return nil, false
	}
	if from == to {
		return nil, true
	}
	i, _ := slices.BinarySearchFunc(gens, from+1, func(g genKeys, gen uint64) int { return cmp.Compare(g.gen, gen) })
	var keys []Key
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
	SortKeys(keys)
	return slices.Compact(keys), true
}

// KeysChangedSince returns the keys whose export or status differs between
// prev and cur, two Sets this Publisher published, or false when it no
// longer knows (prev is nil, too old, or not before cur): the caller must
// then look at every key.
func (p *Publisher) KeysChangedSince(prev, cur *Set) ([]Key, bool) {
	if prev == nil || cur == nil {
		return nil, false
	}
	return p.log.since(prev.Generation, cur.Generation)
}
