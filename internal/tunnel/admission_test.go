package tunnel

import "testing"

// The eviction rule on its own: with every slot taken, a newcomer evicts
// the oldest handshake of the largest holder only if that holder keeps at
// least as many as the newcomer then has; a lone handshake is never
// evicted, so a flood from more sources than slots cannot push out a peer
// that is handshaking alone.
func TestAdmitEvictsOnlyFromLargerHolders(t *testing.T) {
	s := &Server{pendingBySrc: map[string][]*pendingHS{}}
	s.o.Limits.MaxPendingHandshakes, s.o.Limits.MaxPendingHandshakesPerIP = 3, 3
	admit := func(src string) (*pendingHS, *pendingHS, string) {
		return s.admit(&countedConn{}, src)
	}
	for _, src := range []string{"flood", "flood", "peer"} {
		if _, _, reason := admit(src); reason != "" {
			t.Fatalf("admitting %s into free slots: %s", src, reason)
		}
	}
	// flood holds 2, peer 1: a newcomer (0) may take one of flood's.
	_, evicted, reason := admit("new")
	if reason != "" || evicted == nil || evicted.src != "flood" {
		t.Fatalf("newcomer: evicted %+v, reason %q; want flood's oldest", evicted, reason)
	}
	// Now flood, peer and new hold one each: nobody is evicted for
	// another newcomer, and the lone peer keeps its handshake.
	if _, evicted, reason := admit("other"); reason != ReasonHandshakeLimit || evicted != nil {
		t.Fatalf("with only lone holders: evicted %+v, reason %q; want %s", evicted, reason, ReasonHandshakeLimit)
	}
	if len(s.pendingBySrc["peer"]) != 1 {
		t.Errorf("the lone peer lost its handshake: %v", s.pendingBySrc)
	}
}
