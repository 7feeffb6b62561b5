package testkit

import (
	"bytes"
	"sync"
)

// LockedBuffer is a log sink that goroutines of the code under test write
// while the test reads it: a bytes.Buffer is not safe for that.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
