package tunnel

import (
	"log/slog"
	"sync"

	"github.com/hashicorp/yamux"

	"ferry.dev/ferry/internal/identity"
)

// streamBudget bounds the memory that tunnel streams can pin on ingress,
// per caller identity and in total, counted across all of a caller's
// sessions (finding 4 of docs/security.md).
//
// What a stream pins is its yamux receive window: a peer may send that many
// bytes before the stream is read. A stream pins it from the moment the peer
// opens it until both sides have closed it, so the table of a session
// (yamux NumStreams: served, refused and half-open streams alike) is what is
// bounded, in bytes, by MaxCallerStreamMemory and MaxTotalStreamMemory.
// Served streams may use half of each budget; the other half is slack for
// refused and finished streams whose peer has not yet closed its side (a
// conforming egress closes within a round trip). A stream beyond the served share is refused (StatusOverloaded, which
// egress retries elsewhere); a caller whose table exceeds its whole budget
// loses the session that went over, and when all tables together exceed the
// total, the largest caller loses its largest session.
//
// Charges are in bytes so that a stream whose window is not the minimum
// (a window sized to the path) fits: charge takes the stream's window.
// Tables are counted at MaxStreamWindow each, the most a window may be.
type streamBudget struct {
	window                  int64 // MaxStreamWindow: the table's unit
	callerLimit, totalLimit int64 // bytes, tables included
	callerServed            int64 // bytes of served streams per caller
	totalServed             int64 // bytes of served streams in all

	mu        sync.Mutex
	served    map[identity.ID]int64
	allServed int64
	// tables are the last seen NumStreams of each session, by caller;
	// tableSum their sum over all sessions. A caller's own are refreshed on
	// each of its streams; others' may be stale until theirs.
	tables   map[identity.ID]map[*yamux.Session]int
	tableSum int
}

func newStreamBudget(l Limits) *streamBudget {
	w := int64(l.MaxStreamWindow)
	return &streamBudget{
		window:       w,
		callerLimit:  l.MaxCallerStreamMemory,
		totalLimit:   l.MaxTotalStreamMemory,
		callerServed: servedShare(l.MaxCallerStreamMemory, w),
		totalServed:  servedShare(l.MaxTotalStreamMemory, w),
		served:       map[identity.ID]int64{},
		tables:       map[identity.ID]map[*yamux.Session]int{},
	}
}

// servedShare is the bytes of limit that served streams may use: half of
// the streams that fit in it, at least one.
func servedShare(limit, window int64) int64 {
	return max(limit/window/2, 1) * window
}

func (b *streamBudget) addSession(id identity.ID, s *yamux.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tables[id] == nil {
		b.tables[id] = map[*yamux.Session]int{}
	}
	b.tables[id][s] = 0
}

func (b *streamBudget) removeSession(id identity.ID, s *yamux.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tableSum -= b.tables[id][s]
	delete(b.tables[id], s)
	if len(b.tables[id]) == 0 {
		delete(b.tables, id)
	}
}

// refreshLocked re-reads the tables of id's sessions and returns their sum.
func (b *streamBudget) refreshLocked(id identity.ID) int {
	sum := 0
	for s, old := range b.tables[id] {
		n := s.NumStreams()
		b.tables[id][s] = n
		b.tableSum += n - old
		sum += n
	}
	return sum
}

// overTable checks the tables after a stream was accepted on sess of id. It
// returns the session to close, or nil, and the reason.
func (b *streamBudget) overTable(id identity.ID, sess *yamux.Session) (*yamux.Session, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(b.refreshLocked(id))*b.window > b.callerLimit {
		return sess, ReasonCallerStreamMemory
	}
	if int64(b.tableSum)*b.window <= b.totalLimit {
		return nil, ""
	}
	// Over the total by the cached counts: refresh all (rare: only near the
	// limit), then cut the largest table of the largest caller.
	var worst identity.ID
	most := -1
	for c := range b.tables {
		if n := b.refreshLocked(c); n > most {
			worst, most = c, n
		}
	}
	if int64(b.tableSum)*b.window <= b.totalLimit {
		return nil, ""
	}
	var victim *yamux.Session
	for s, n := range b.tables[worst] {
		if victim == nil || n > b.tables[worst][victim] {
			victim = s
		}
	}
	return victim, ReasonTotalStreamMemory
}

// charge reserves window bytes for a stream of id about to be served, or
// returns the reason it may not be.
func (b *streamBudget) charge(id identity.ID, window int64) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.served[id]+window > b.callerServed {
		return false, ReasonCallerStreamMemory
	}
	if b.allServed+window > b.totalServed {
		return false, ReasonTotalStreamMemory
	}
	b.served[id] += window
	b.allServed += window
	return true, ""
}

func (b *streamBudget) release(id identity.ID, window int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allServed -= window
	if b.served[id] -= window; b.served[id] <= 0 {
		delete(b.served, id)
	}
}

// closeOverMemory applies the table bound after a stream was accepted on
// sess of id, closing the session it picks. It reports whether that was
// sess itself, whose accept loop must then end.
func (s *Server) closeOverMemory(id identity.ID, sess *yamux.Session, log *slog.Logger) bool {
	victim, reason := s.budget.overTable(id, sess)
	if victim == nil {
		return false
	}
	s.o.Observer.Rejected(reason)
	log.Warn("closing tunnel session over its stream memory", "reason", reason, "own_session", victim == sess)
	_ = victim.Close()
	return victim == sess
}

// chargeStream reserves the window of st, a stream of id about to be
// served, or refuses st as overloaded. The caller releases the charge.
func (s *Server) chargeStream(id identity.ID, st *yamux.Stream) (window int64, ok bool) {
	window = int64(s.o.Limits.MaxStreamWindow)
	ok, reason := s.budget.charge(id, window)
	if ok {
		return window, true
	}
	s.o.Observer.Rejected(reason)
	msg := "too many streams from this cluster"
	if reason == ReasonTotalStreamMemory {
		msg = "too many streams on this gateway"
	}
	go refuse(&Stream{Stream: st}, StatusOverloaded, msg)
	return 0, false
}
