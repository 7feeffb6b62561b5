package tunnel

// Admission of unauthenticated connections to their TLS handshake
// (finding 5 of docs/security.md). A handshake holds one of
// MaxPendingHandshakes slots for at most HandshakeTimeout, and one source
// (sourceKey) at most MaxPendingHandshakesPerIP of them. When every slot is
// taken, a connection from a source that holds at least two fewer pending
// handshakes than the largest holder evicts that holder's oldest handshake
// instead of being refused: a flood from a few addresses can fill the
// slots, but it cannot keep a new source out, as the new source always
// holds fewer. A source's only handshake is never evicted, so only as many
// flooding sources as there are slots, each holding one, can refuse a new
// peer; peers behind one SNAT address count as one source.

// pendingHS is one connection in its TLS handshake.
type pendingHS struct {
	conn    *countedConn
	src     string
	seq     uint64 // arrival order
	evicted bool   // guarded by Server.mu
}

// admit takes a handshake slot for c from src, evicting another source's
// handshake when that is fair. It returns nil and the reason when c must be
// refused; the caller closes c, and closes evicted if it is not nil.
func (s *Server) admit(c *countedConn, src string) (hs, evicted *pendingHS, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := len(s.pendingBySrc[src])
	if held >= s.o.Limits.MaxPendingHandshakesPerIP {
		return nil, nil, ReasonIPHandshakeLimit
	}
	if s.pendingN >= s.o.Limits.MaxPendingHandshakes {
		evicted = s.largestHolderLocked()
		// Only from a source that would still hold at least as many as
		// the newcomer: never a source's only handshake, so a flood from
		// more sources than slots churns among itself instead of evicting
		// lone peers.
		if evicted == nil || len(s.pendingBySrc[evicted.src]) <= held+1 {
			return nil, nil, ReasonHandshakeLimit
		}
		s.removePendingLocked(evicted)
		evicted.evicted = true
	}
	s.pendingSeq++
	hs = &pendingHS{conn: c, src: src, seq: s.pendingSeq}
	s.pendingBySrc[src] = append(s.pendingBySrc[src], hs)
	s.pendingN++
	return hs, evicted, ""
}

// largestHolderLocked returns the oldest handshake of the source holding the
// most; among equal holders, the one whose oldest handshake is the oldest
// (handshakes are appended in arrival order, so the first is the oldest,
// and arrival order across sources is kept by seq).
func (s *Server) largestHolderLocked() *pendingHS {
	var victim *pendingHS
	most := 0
	for _, l := range s.pendingBySrc {
		if len(l) > most || (len(l) == most && l[0].seq < victim.seq) {
			victim, most = l[0], len(l)
		}
	}
	return victim
}

func (s *Server) removePendingLocked(hs *pendingHS) {
	l := s.pendingBySrc[hs.src]
	for i, h := range l {
		if h == hs {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(s.pendingBySrc, hs.src)
	} else {
		s.pendingBySrc[hs.src] = l
	}
	s.pendingN--
}

// donePending frees hs's slot once its handshake ended. It reports whether
// hs had been evicted (its slot was already given away).
func (s *Server) donePending(hs *pendingHS) (evicted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hs.evicted {
		return true
	}
	s.removePendingLocked(hs)
	return false
}

// pendingFrom is the number of pending handshakes from src.
func (s *Server) pendingFrom(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pendingBySrc[src])
}
