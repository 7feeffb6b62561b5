package claims

import (
	"sync"
	"time"
)

// Retry pacing for owners whose claims wait for their holder to go. The
// delete of a holder is usually done within a second; one held by someone
// else's finalizer can take forever, and its eventual removal wakes the
// owner through its watch, so the retries back off to RetryMax rather than
// poll.
const (
	RetryFirst = time.Second
	RetryMax   = 5 * time.Minute
)

// Retry remembers, per owner, how long to wait before looking again.
type Retry struct {
	mu   sync.Mutex
	next map[Owner]time.Duration
}

// After returns how soon owner should be reconciled again with pending
// claims still waiting: RetryFirst, then doubling to RetryMax; 0, and a
// fresh start, once none wait.
func (r *Retry) After(owner Owner, pending int) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pending == 0 {
		delete(r.next, owner)
		return 0
	}
	if r.next == nil {
		r.next = map[Owner]time.Duration{}
	}
	d := r.next[owner]
	if d == 0 {
		d = RetryFirst
	}
	r.next[owner] = min(2*d, RetryMax)
	return d
}
