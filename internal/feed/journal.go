package feed

import (
	"crypto/rand"
	"encoding/binary"
	"iter"
	"sort"
	"sync"
	"time"

	"ferry.dev/ferry/internal/exports"
)

// Versions. A version is epoch<<seqBits | seq. The epoch is the server's
// start time in milliseconds with its low 10 bits randomised, so versions of
// a restarted (or another replica's) server are higher than an old one's
// (for starts more than about a second apart) and two servers are very
// unlikely to share an epoch; a client's version from another epoch is
// never resumed, it gets a snapshot. seq counts changes within the epoch.
const (
	seqBits    = 20
	seqMask    = 1<<seqBits - 1
	randomBits = 10
)

func newEpoch(now time.Time) uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ms := uint64(now.UnixMilli())
	return (ms &^ (1<<randomBits - 1)) | binary.LittleEndian.Uint64(b[:])&(1<<randomBits-1)
}

// entry records that key changed at version from old to new (nil: absent).
// Entries share the exports of the Sets they came from; nothing mutates
// them.
type entry struct {
	version  uint64
	key      exports.Key
	old, new *exports.Export
}

// journal turns the sequence of export Sets into versions and keeps a
// bounded history of per-key changes, from which it computes each
// importer's delta since any version it still covers. It is global, not
// per importer: filtering by cluster happens when a delta is read, so the
// cost of a change is one entry per changed export whatever the number of
// subscribers.
type journal struct {
	maxEntries int
	lister     changeLister // nil: the source cannot list changes

	mu      sync.Mutex
	epoch   uint64
	seq     uint64
	base    uint64 // deltas can be served from any version in [base, version()]
	set     *exports.Set
	entries []entry
	next    chan struct{} // closed when the version advances
	ready   chan struct{} // closed at the first synced set
}

func newJournal(maxEntries int, now time.Time) *journal {
	return &journal{maxEntries: maxEntries, epoch: newEpoch(now), next: make(chan struct{}), ready: make(chan struct{})}
}

func (j *journal) versionLocked() uint64 { return j.epoch<<seqBits | j.seq }

// view returns the current version and a channel closed when it advances.
func (j *journal) view() (uint64, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.versionLocked(), j.next
}

// advance moves the journal to set. A set that changes no export as any
// importer could see it (a status change, or only this cluster's own pod
// addresses) does not bump the version, so importers hear nothing and the
// history is not spent on it.
func (j *journal) advance(set *exports.Set) {
	if !set.Synced {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.set == nil {
		j.seq = 1
		j.base = j.versionLocked()
		j.set = set
		close(j.ready)
		return
	}
	changed := visibleChanges(j.set, set, j.changedKeys(set))
	old := j.set
	j.set = set
	if len(changed) == 0 {
		return
	}
	if j.seq == seqMask {
		// Out of sequence numbers: start a new epoch with no history, so
		// every subscriber takes a snapshot. Once per million changes.
		j.epoch = max(newEpoch(time.Now()), j.epoch+1)
		j.seq = 1
		j.base = j.versionLocked()
		j.entries = nil
		j.notifyLocked()
		return
	}
	j.seq++
	v := j.versionLocked()
	for _, k := range changed {
		e := entry{version: v, key: k}
		if o, ok := old.Export(k); ok {
			e.old = &o
		}
		if n, ok := set.Export(k); ok {
			e.new = &n
		}
		j.entries = append(j.entries, e)
	}
	j.trimLocked()
	j.notifyLocked()
}

// changedKeys lists (a superset of) the keys whose export differs between
// j.set and set, from the source's own record when set is not j.set's
// immediate successor, where Set.ChangedSince would compare every export.
func (j *journal) changedKeys(set *exports.Set) []exports.Key {
	if j.lister != nil && j.set.Generation+1 != set.Generation {
		if keys, ok := j.lister.KeysChangedSince(j.set, set); ok {
			return keys
		}
	}
	return set.ChangedSince(j.set)
}

// visibleChanges returns the keys of changed (which it does not modify:
// it may be the Sets' own list, shared with every other follower of the
// source) whose export differs between old and set in more than what stays
// in this cluster. Its cost is O(len(changed)), not O(exports).
func visibleChanges(old, set *exports.Set, changed []exports.Key) []exports.Key {
	var out []exports.Key
	for _, k := range changed {
		o, inOld := old.Export(k)
		n, inNew := set.Export(k)
		switch {
		case !inOld && !inNew: // listed by a source that lists statuses too
		case inOld && inNew && sameButLocal(&o, &n):
		default:
			out = append(out, k)
		}
	}
	return out
}

func (j *journal) notifyLocked() {
	close(j.next)
	j.next = make(chan struct{})
}

// trimLocked drops the oldest versions once the history exceeds its bound
// by a quarter, so trimming (a copy) is amortised. Whole versions are
// dropped: base is always a version the history starts right after.
func (j *journal) trimLocked() {
	if len(j.entries) <= j.maxEntries+j.maxEntries/4 {
		return
	}
	drop := len(j.entries) - j.maxEntries
	for drop < len(j.entries) && j.entries[drop].version == j.entries[drop-1].version {
		drop++
	}
	j.base = j.entries[drop-1].version
	j.entries = append([]entry(nil), j.entries[drop:]...)
}

// snapshot returns the exports visible to an importer, in key order, and
// the version they are current at. They are yielded from the published Set
// as the caller walks them, outside the lock: a reconnecting importer must
// not stall advance, and with it every other importer's deltas, and fifty
// importers connecting at once must not each hold a copy of every export
// (at 9,500 exports that was several MB per subscriber).
func (j *journal) snapshot(visible func(*exports.Export) bool) (uint64, iter.Seq[exports.Export], <-chan struct{}) {
	j.mu.Lock()
	v, set, next := j.versionLocked(), j.set, j.next
	j.mu.Unlock()
	// The Set is immutable: walking it later, while it is sent, sees the
	// exports at v, and nothing is copied up front.
	visibleAtV := func(yield func(exports.Export) bool) {
		for _, e := range set.Exports() {
			if visible(&e) && !yield(e) {
				return
			}
		}
	}
	return v, visibleAtV, next
}

// delta returns what an importer that is current at version from must
// apply to become current: exports that became visible or changed, and
// keys that stopped being visible. A key the importer never saw is never
// mentioned, not even in deletes, so a cluster learns nothing about
// exports it may not import. ok is false when from is outside the history
// (too old, from another epoch, or from the future): the importer needs a
// snapshot.
func (j *journal) delta(from uint64, visible func(*exports.Export) bool) (v uint64, upserts []exports.Export, deletes []exports.Key, next <-chan struct{}, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, next = j.versionLocked(), j.next
	if from > v || from < j.base {
		return v, nil, nil, next, false
	}
	i := sort.Search(len(j.entries), func(i int) bool { return j.entries[i].version > from })
	first := map[exports.Key]*exports.Export{} // the value at version from
	for _, e := range j.entries[i:] {
		if _, seen := first[e.key]; !seen {
			first[e.key] = e.old
		}
	}
	for k, old := range first {
		was := old != nil && visible(old)
		cur, exists := j.set.Export(k)
		now := exists && visible(&cur)
		switch {
		case now && (!was || !sameForImporter(old, &cur)):
			upserts = append(upserts, cur)
		case was && !now:
			deletes = append(deletes, k)
		}
	}
	sort.Slice(upserts, func(a, b int) bool { return exports.CompareKeys(upserts[a].Key, upserts[b].Key) < 0 })
	exports.SortKeys(deletes)
	return v, upserts, deletes, next, true
}
