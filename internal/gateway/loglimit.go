package gateway

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter caps per-event logs (a rejected stream) at burst per second.
// A hostile caller controls how often ingress rejects, so without a cap it
// would control how much ingress writes to its log; the counters still see
// every event.
type logLimiter struct {
	burst int

	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

func (l *logLimiter) allow(log *slog.Logger) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.window) >= time.Second {
		if l.suppressed > 0 {
			log.Warn("log lines suppressed", "count", l.suppressed, "reason", "rate limit")
		}
		l.window, l.n, l.suppressed = now, 0, 0
	}
	if l.n < l.burst {
		l.n++
		return true
	}
	l.suppressed++
	return false
}
