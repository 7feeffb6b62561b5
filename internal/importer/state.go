package importer

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
)

// feedState is one Link's copy of the remote export set (requirement II:
// each importer keeps its own) and what it knows about the stream. It is the
// session's feed.Handler; the reconciler reads it through snapshot.
type feedState struct {
	clock clock.PassiveClock
	// changed asks for a reconcile of the keys an update touched (all of
	// them after a snapshot), or of none when only the stream's state
	// changed. It never blocks.
	changed func(all bool, keys ...exports.Key)
	applied func() // told of every applied update (may be nil); never blocks

	mu        sync.Mutex
	exports   map[exports.Key]exports.Export
	version   uint64
	synced    bool // a snapshot has been applied since this process started
	connected bool
	// reported is true once the stream's outcome is known (Connected or
	// Disconnected was called): until then Link status keeps what an earlier
	// process wrote, so a restart does not write "connecting".
	reported bool
	connErr  error
	// lastMessage is the last time anything arrived (update, heartbeat).
	lastMessage time.Time
	// syncTime is the time the mirrors' data was last confirmed current:
	// when an update was applied, or, at a disconnect, the last message.
	syncTime time.Time
	// current is the version the stream says we are current with: the last
	// applied update, or a later heartbeat when the server's changes were
	// not visible to this cluster. It is where a restarted Run resumes.
	current uint64
	// dirtySince is the arrival of the oldest update not yet reconciled:
	// the feed lag is measured from it.
	dirtySince time.Time
	seq        uint64 // counts applied updates
}

func newFeedState(c clock.PassiveClock, changed func(bool, ...exports.Key), applied func()) *feedState {
	return &feedState{clock: c, changed: changed, applied: applied, exports: map[exports.Key]exports.Export{}}
}

// Apply implements feed.Handler.
func (s *feedState) Apply(u feed.Update) {
	now := s.clock.Now()
	s.mu.Lock()
	if u.Snapshot {
		s.exports = make(map[exports.Key]exports.Export, len(u.Upserts))
		s.synced = true
	}
	for _, e := range u.Upserts {
		s.exports[e.Key] = e
	}
	for _, k := range u.Deletes {
		delete(s.exports, k)
	}
	// A snapshot from another gateway replica may carry a lower version;
	// the stream's word is final either way.
	s.version, s.current = u.Version, u.Version
	s.lastMessage, s.syncTime = now, now
	if s.dirtySince.IsZero() {
		s.dirtySince = now
	}
	s.seq++
	s.mu.Unlock()
	if u.Snapshot {
		s.changed(true)
	} else {
		keys := make([]exports.Key, 0, len(u.Upserts)+len(u.Deletes))
		for _, e := range u.Upserts {
			keys = append(keys, e.Key)
		}
		s.changed(false, append(keys, u.Deletes...)...)
	}
	if s.applied != nil {
		s.applied()
	}
}

// Connected implements feed.Handler.
func (s *feedState) Connected() {
	s.mu.Lock()
	s.connected, s.reported, s.connErr = true, true, nil
	s.lastMessage = s.clock.Now()
	s.mu.Unlock()
	s.changed(false)
}

// Disconnected implements feed.Handler. Only the first report of an
// outage counts: the feed client retries (and fails over across addresses)
// on its own, and restating each attempt's error would cost a reconcile and
// a status write per retry for as long as the remote is down. The log has
// every attempt.
func (s *feedState) Disconnected(err error) {
	s.mu.Lock()
	first := s.connected || !s.reported
	if first {
		if s.connected && !s.lastMessage.IsZero() {
			s.syncTime = s.lastMessage
		}
		s.connected, s.reported, s.connErr = false, true, err
	}
	s.mu.Unlock()
	if first {
		s.changed(false)
	}
}

// Heartbeat implements feed.Handler. It only records the contact and the
// resume point: a heartbeat changes no object, so it triggers no reconcile,
// and Link status keeps the version of the last applied update (a newer
// heartbeat version only means changes this cluster may not see).
func (s *feedState) Heartbeat(version uint64) {
	s.mu.Lock()
	s.lastMessage = s.clock.Now()
	if s.synced {
		s.current = max(s.current, version)
	}
	s.mu.Unlock()
}

// resumeFrom is the version to resume from: the last applied one, or 0 (a
// fresh snapshot) when this process has none.
func (s *feedState) resumeFrom() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		return 0
	}
	return s.current
}

// feedView is a consistent copy of a feedState for one reconcile.
type feedView struct {
	Exports     []exports.Export // sorted by key
	Version     uint64
	Synced      bool
	Connected   bool
	Reported    bool
	ConnErr     string
	LastMessage time.Time
	SyncTime    time.Time
	DirtySince  time.Time
	seq         uint64
}

func (s *feedState) snapshot() feedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.metaLocked()
	if s.synced {
		v.Exports = slices.SortedFunc(maps.Values(s.exports), func(a, b exports.Export) int {
			return compareKeys(a.Key, b.Key)
		})
	}
	return v
}

// meta is a feedView without the exports, for a pass that looks up only
// the keys it was asked about (see lookup): copying and sorting every
// export per change is what a scoped pass avoids.
func (s *feedState) meta() feedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metaLocked()
}

func (s *feedState) metaLocked() feedView {
	v := feedView{
		Version: s.version, Synced: s.synced, Connected: s.connected, Reported: s.reported,
		LastMessage: s.lastMessage, SyncTime: s.syncTime, DirtySince: s.dirtySince, seq: s.seq,
	}
	if s.connErr != nil {
		v.ConnErr = s.connErr.Error()
	}
	return v
}

// compareKeys orders keys by namespace, then name, without allocating.
func compareKeys(a, b exports.Key) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// reconciled clears the lag clock if nothing arrived after the view was
// taken, and returns how long the oldest update waited.
func (s *feedState) reconciled(v feedView) time.Duration {
	if v.DirtySince.IsZero() {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq == v.seq {
		s.dirtySince = time.Time{}
	}
	return s.clock.Since(v.DirtySince)
}

// lookup returns the remote export of key, if the stream has delivered it.
func (s *feedState) lookup(k exports.Key) (exports.Export, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		return exports.Export{}, false
	}
	e, ok := s.exports[k]
	return e, ok
}
