package exports

import (
	"iter"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
)

// Set is one published state of the export set. A Set is immutable: readers
// may keep and share it without locks. Changed is closed when a newer Set
// is published, which is how subscribers learn of changes: they wait on it,
// then read the publisher's current Set. Intermediate Sets may be skipped,
// never lost, so a slow subscriber costs nothing and cannot block the
// publisher; there is no queue of events to overflow.
//
// Exports and statuses are held in persistent trees: the next Set shares
// every node that a change does not touch, so publishing one changed
// export costs O(log n), not a copy of all n (BenchmarkRecompute), and a
// reader's old Set stays valid for as long as it holds it.
type Set struct {
	// Generation increases by one on every publish. It is local to the
	// publisher and is not the feed's version.
	Generation uint64
	// Synced is false until the caches behind the set have synced once.
	// Until then the set is empty and means "unknown", not "nothing
	// exported": never publish it to importers.
	Synced bool

	exports  *iradix.Tree[Export]
	statuses *iradix.Tree[Status]
	// changed lists the keys whose export differs from Generation-1.
	changed []Key
	next    chan struct{}
}

// Changed is closed when a newer Set has been published.
func (s *Set) Changed() <-chan struct{} { return s.next }

// Export returns the export of k, if k is exported.
func (s *Set) Export(k Key) (Export, bool) { return s.exports.Get(treeKey(k)) }

// Status returns the status of k's ServiceExport, if there is one.
func (s *Set) Status(k Key) (Status, bool) { return s.statuses.Get(treeKey(k)) }

// Len is the number of exports.
func (s *Set) Len() int { return s.exports.Len() }

// Exports yields every export in key order (namespace, then name).
func (s *Set) Exports() iter.Seq2[Key, Export] { return all(s.exports) }

// Statuses yields every ServiceExport's status in key order.
func (s *Set) Statuses() iter.Seq2[Key, Status] { return all(s.statuses) }

// StatusKeys returns the key of every ServiceExport, in order.
func (s *Set) StatusKeys() []Key {
	keys := make([]Key, 0, s.statuses.Len())
	for k := range s.Statuses() {
		keys = append(keys, k)
	}
	return keys
}

// Map returns a copy of the exports as a map, for consumers that work on
// the whole set at once. It costs O(n); per-change paths use Export.
func (s *Set) Map() map[Key]Export {
	m := make(map[Key]Export, s.Len())
	for k, e := range s.Exports() {
		m[k] = e
	}
	return m
}

// ChangedSince returns the keys whose export differs between prev and s,
// sorted. It is cheap when prev is s's immediate predecessor and falls back
// to a comparison of both trees in key order otherwise.
func (s *Set) ChangedSince(prev *Set) []Key {
	switch {
	case prev == s:
		return nil
	case prev != nil && prev.Generation+1 == s.Generation:
		return s.changed
	case prev == nil:
		return diffTrees(iradix.New[Export](), s.exports)
	}
	return diffTrees(prev.exports, s.exports)
}
