package tunnel

import (
	"context"
	"sync"
)

// tracker counts in-flight work and lets a drain wait for it. Unlike a
// sync.WaitGroup it refuses new work once closed, so there is no race between
// "stop accepting" and "wait for zero".
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // closed when closed && n == 0
}

func newTracker() *tracker { return &tracker{zero: make(chan struct{})} }

// add registers one unit of work, or reports false after close.
func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closed && t.n == 0 {
		close(t.zero)
	}
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// close stops new work; it is idempotent.
func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if t.n == 0 {
		close(t.zero)
	}
}

// wait returns when all work is done or ctx ends; call close first.
func (t *tracker) wait(ctx context.Context) error {
	select {
	case <-t.zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
