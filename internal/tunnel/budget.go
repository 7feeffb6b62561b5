package tunnel

import (
	"errors"
	"sync"

	"github.com/libp2p/go-yamux/v5"
)

// initialWindow is the receive window every yamux stream starts with. The
// yamux spec fixes it (there is no SETTINGS frame to lower it), so it is what
// opening a stream costs, whatever the window grows to later.
const initialWindow = 256 << 10

// streamBudget bounds the memory that tunnel streams can pin, per key and
// in total (finding 4 of docs/security.md). On ingress the key is the caller
// identity, counted across all of its sessions; on egress it is the remote
// cluster.
//
// What a stream pins is its receive window: the peer may send that many
// bytes before the stream is read. yamux reserves the window through a
// MemoryManager, one span per stream: initialWindow when the stream opens
// and each doubling when the stream's reader keeps up with the path
// (auto-tuning from the session's measured RTT), and it releases it all when
// the stream is gone. So the budget charges what each window is, not the
// most it could become.
//
// Of a key's limit L (MaxCallerStreamMemory) and the total T
// (MaxTotalStreamMemory):
//   - served streams may hold L/2 and T/2 in opening windows; beyond that a
//     new stream is answered StatusOverloaded, which egress retries on
//     another replica (charge);
//   - windows may grow by L/4 and T/4 in all; beyond that a stream keeps the
//     window it has, which bounds its throughput and nothing else;
//   - every stream in a session's table (served, being refused, or still in
//     the accept backlog) holds its opening window, and a strict budget
//     (ingress) refuses one that would take a key over L or the total over
//     T: yamux then closes the session that tried to open it.
//
// A stream closed on this side leaves the table at once, whatever its peer
// does, so a peer that never closes its side pins nothing.
type streamBudget struct {
	callerLimit, totalLimit int64
	strict                  bool // refuse opening windows beyond the limits
	// refused reports an opening window refused (strict only): a session
	// about to be closed for its caller's memory or for the total.
	refused func(reason string)

	mu   sync.Mutex
	keys map[string]*usage
	all  usage // the sum over keys
}

// usage is what one key (or all of them) holds, in bytes.
type usage struct {
	opened int64 // opening windows of streams in a table
	grown  int64 // growth of windows beyond their opening size
	served int64 // opening windows of served streams (admission)
}

func (u usage) zero() bool { return u == usage{} }

func newStreamBudget(l Limits, strict bool, refused func(reason string)) *streamBudget {
	return &streamBudget{
		callerLimit: l.MaxCallerStreamMemory,
		totalLimit:  l.MaxTotalStreamMemory,
		strict:      strict,
		refused:     refused,
		keys:        map[string]*usage{},
	}
}

// errStreamMemory is what a refused reservation returns to yamux.
var errStreamMemory = errors.New("tunnel: stream memory budget exhausted")

// spans returns the MemoryManager factory for a session of key.
func (b *streamBudget) spans(key string) func() (yamux.MemoryManager, error) {
	return func() (yamux.MemoryManager, error) { return &windowSpan{b: b, key: key}, nil }
}

// windowSpan is one stream's reservation.
type windowSpan struct {
	b     *streamBudget
	key   string
	held  usage // only opened and grown
	ended bool
}

// ReserveMemory is called by yamux with priority 255 for the opening window
// and a lower one for growth.
func (s *windowSpan) ReserveMemory(size int, prio uint8) error {
	return s.b.reserve(s, int64(size), prio == 255)
}

// ReleaseMemory gives back part of a reservation (yamux v5 does not call it:
// windows never shrink).
func (s *windowSpan) ReleaseMemory(size int) { s.b.give(s, int64(size)) }

// Done releases the whole span; yamux calls it when the stream leaves the
// table, and again harmlessly when the session closes.
func (s *windowSpan) Done() { s.b.give(s, s.held.opened+s.held.grown) }

func (b *streamBudget) keyLocked(key string) *usage {
	u := b.keys[key]
	if u == nil {
		u = &usage{}
		b.keys[key] = u
	}
	return u
}

func (b *streamBudget) dropLocked(key string) {
	if u := b.keys[key]; u != nil && u.zero() {
		delete(b.keys, key)
	}
}

func (b *streamBudget) reserve(s *windowSpan, n int64, opening bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.ended {
		return errStreamMemory
	}
	u := b.keyLocked(s.key)
	defer b.dropLocked(s.key)
	if opening {
		if b.strict {
			reason := ""
			switch {
			case u.opened+u.grown+n > b.callerLimit:
				reason = ReasonCallerStreamMemory
			case b.all.opened+b.all.grown+n > b.totalLimit:
				reason = ReasonTotalStreamMemory
			}
			if reason != "" {
				b.refused(reason)
				return errStreamMemory
			}
		}
		u.opened += n
		b.all.opened += n
		s.held.opened += n
		return nil
	}
	if u.grown+n > b.callerLimit/4 || b.all.grown+n > b.totalLimit/4 {
		return errStreamMemory
	}
	u.grown += n
	b.all.grown += n
	s.held.grown += n
	return nil
}

// give returns n bytes of s, growth first.
func (b *streamBudget) give(s *windowSpan, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.held.opened+s.held.grown == 0 {
		s.ended = true
		return
	}
	u := b.keyLocked(s.key)
	g := min(n, s.held.grown)
	o := min(n-g, s.held.opened)
	s.held.grown -= g
	s.held.opened -= o
	u.grown -= g
	u.opened -= o
	b.all.grown -= g
	b.all.opened -= o
	if s.held.opened+s.held.grown == 0 {
		s.ended = true
	}
	b.dropLocked(s.key)
}

// charge admits one more served stream of key, or returns the reason it may
// not be served. The caller releases it with discharge.
func (b *streamBudget) charge(key string) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.keyLocked(key)
	defer b.dropLocked(key)
	if u.served+initialWindow > max(b.callerLimit/2, initialWindow) {
		return false, ReasonCallerStreamMemory
	}
	if b.all.served+initialWindow > max(b.totalLimit/2, initialWindow) {
		return false, ReasonTotalStreamMemory
	}
	u.served += initialWindow
	b.all.served += initialWindow
	return true, ""
}

func (b *streamBudget) discharge(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.keyLocked(key)
	u.served -= initialWindow
	b.all.served -= initialWindow
	b.dropLocked(key)
}

// held reports what key holds and what all keys hold together, in bytes of
// windows (opening plus growth); for tests and metrics.
func (b *streamBudget) held(key string) (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var k int64
	if u := b.keys[key]; u != nil {
		k = u.opened + u.grown
	}
	return k, b.all.opened + b.all.grown
}

// chargeStream admits st, a stream of key about to be served, or refuses it
// as overloaded. The caller discharges an admitted stream.
func (s *Server) chargeStream(key string, st *Stream) bool {
	ok, reason := s.budget.charge(key)
	if ok {
		return true
	}
	s.o.Observer.Rejected(reason)
	msg := "too many streams from this cluster"
	if reason == ReasonTotalStreamMemory {
		msg = "too many streams on this gateway"
	}
	go refuse(st, StatusOverloaded, msg)
	return false
}
