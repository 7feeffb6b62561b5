package gateway

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"ferry.dev/ferry/internal/tunnel"
)

// Passive ejection. The probe and the tunnel's keepalive find a dead
// gateway in seconds, but a hung one (stopped, overloaded, behind a
// black-holing link) keeps its TCP session up for KeepAliveInterval +
// KeepAliveTimeout. What every connection learns for free is that its
// attempt failed; ejection makes that lesson count for the next ones, so a
// failing destination stops taking new connections after one failure
// instead of one per connection. An ejected destination is still tried, but
// last: a client never fails because of an ejection.

// ejectKey names what a failure ejects. A failure of the gateway itself
// (unreachable, overloaded, draining) ejects the whole cluster: every
// service there is as unreachable. A failure of one service (no ready
// endpoint) ejects that destination only.
type ejectKey struct {
	cluster string
	target  tunnel.Target // zero for the whole cluster
}

// ejection is one key's state: a small circuit breaker. Closed (streak 0),
// it admits every connection. Open (now < until), it admits none. Half-open
// (the ejection has ended but no attempt has succeeded since), it admits
// one connection at a time, the trial: the others keep going elsewhere
// until the trial succeeds, so an ejected cluster comes back on the strength
// of one connection, not of the hundred that arrive the moment its ejection
// ends. Its fields are read on the hot path without a lock.
type ejection struct {
	until atomic.Int64 // unix nanoseconds; ejected while now < until
	// trial is when the current trial was admitted (unix nanoseconds), 0
	// for none. A trial that reports nothing within trialWindow (its
	// connection went elsewhere first, or it is still waiting) lets the
	// next connection try.
	trial atomic.Int64
	// streak counts consecutive failures; the backoff doubles with each.
	// It is written under mu, and read without it by succeeded.
	streak atomic.Int32
	mu     sync.Mutex
}

// silence tells a cluster that has gone quiet: attempts are waiting for it
// and it has answered none of them, nor anything else, for a while. A hung
// gateway is silent long before the first attempt's AttemptTimeout ends;
// a busy healthy one answers something every few milliseconds.
type silence struct {
	waiting atomic.Int32
	// since is when the cluster was last heard from (an answer, a
	// rejection included), or when an attempt began to wait with none
	// waiting before, whichever is later: unix nanoseconds.
	since atomic.Int64
}

// ejector keeps the ejections of one egress.
type ejector struct {
	base, max   time.Duration
	trialWindow time.Duration
	// quietAfter is how long a cluster may leave waiting attempts
	// unanswered before new connections try it only after the others.
	quietAfter time.Duration
	silences   sync.Map // cluster → *silence
	now        func() time.Time
	onEject    func(cluster string, scope string)
	m          sync.Map // ejectKey → *ejection
}

func newEjector(base, max, trialWindow, quietAfter time.Duration, now func() time.Time, onEject func(cluster, scope string)) *ejector {
	return &ejector{base: base, max: max, trialWindow: trialWindow, quietAfter: quietAfter, now: now, onEject: onEject}
}

// waiting records that an attempt waits for cluster; call done with
// whether the cluster answered (accepted or rejected) when it ends.
func (j *ejector) waiting(cluster string) (done func(answered bool)) {
	v, _ := j.silences.LoadOrStore(cluster, &silence{})
	q := v.(*silence)
	if q.waiting.Add(1) == 1 {
		q.since.Store(j.now().UnixNano())
	}
	return func(answered bool) {
		if answered {
			q.since.Store(j.now().UnixNano())
		}
		q.waiting.Add(-1)
	}
}

// quiet reports whether cluster has left attempts unanswered for
// quietAfter.
func (j *ejector) quiet(cluster string, now int64) bool {
	v, ok := j.silences.Load(cluster)
	if !ok {
		return false
	}
	q := v.(*silence)
	return q.waiting.Load() > 0 && now-q.since.Load() >= int64(j.quietAfter)
}

// admit reports whether a connection may try d in its first pass. Asked
// only right before the attempt: a half-open destination's admission is its
// one trial.
func (j *ejector) admit(d Destination, now int64) bool {
	if !d.Local && j.quiet(d.Cluster, now) {
		return false
	}
	return j.admitKey(ejectKey{cluster: d.Cluster}, now) && j.admitKey(ejectKey{cluster: d.Cluster, target: d.Target}, now)
}

func (j *ejector) admitKey(k ejectKey, now int64) bool {
	v, ok := j.m.Load(k)
	if !ok {
		return true
	}
	e := v.(*ejection)
	switch {
	case now < e.until.Load():
		return false
	case e.streak.Load() == 0:
		return true
	}
	t := e.trial.Load()
	return now-t >= int64(j.trialWindow) && e.trial.CompareAndSwap(t, now)
}

// ejected reports, without claiming a trial, whether d is ejected now.
func (j *ejector) ejected(d Destination, now int64) bool {
	for _, k := range [2]ejectKey{{cluster: d.Cluster}, {cluster: d.Cluster, target: d.Target}} {
		if v, ok := j.m.Load(k); ok && now < v.(*ejection).until.Load() {
			return true
		}
	}
	return false
}

// failed ejects d (or its whole cluster) for base × 2^(streak-1), capped at
// max, with ±20% jitter so that clusters ejected together do not all
// return together. It returns how long.
func (j *ejector) failed(d Destination, wholeCluster bool) time.Duration {
	k := ejectKey{cluster: d.Cluster}
	scope := "cluster"
	if !wholeCluster {
		k.target, scope = d.Target, "service"
	}
	v, _ := j.m.LoadOrStore(k, &ejection{})
	e := v.(*ejection)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := j.now()
	if now.UnixNano() < e.until.Load() {
		// Connections that were already trying when the first one failed
		// report the same failure: it is one ejection, not several.
		return time.Duration(e.until.Load() - now.UnixNano())
	}
	streak := e.streak.Add(1)
	d0 := j.base
	for i := int32(1); i < streak && d0 < j.max; i++ {
		d0 *= 2
	}
	d0 = min(d0, j.max)
	d0 = time.Duration(float64(d0) * (0.8 + 0.4*rand.Float64()))
	e.until.Store(now.Add(d0).UnixNano())
	e.trial.Store(0)
	if j.onEject != nil {
		j.onEject(d.Cluster, scope)
	}
	return d0
}

// succeeded ends d's streaks: the next failure ejects for base again.
func (j *ejector) succeeded(d Destination) {
	for _, k := range [2]ejectKey{{cluster: d.Cluster}, {cluster: d.Cluster, target: d.Target}} {
		if v, ok := j.m.Load(k); ok {
			if e := v.(*ejection); e.streak.Load() != 0 {
				e.streak.Store(0)
				e.trial.Store(0)
			}
		}
	}
}

// keepOnly drops the state of destinations no route has any more, so that
// service churn does not grow the maps.
func (j *ejector) keepOnly(routes map[int]Route) {
	live := map[ejectKey]bool{}
	for _, r := range routes {
		for _, d := range r.Destinations {
			live[ejectKey{cluster: d.Cluster}] = true
			live[ejectKey{cluster: d.Cluster, target: d.Target}] = true
		}
	}
	j.silences.Range(func(c, _ any) bool {
		if !live[ejectKey{cluster: c.(string)}] {
			j.silences.Delete(c)
		}
		return true
	})
	j.m.Range(func(k, _ any) bool {
		if !live[k.(ejectKey)] {
			j.m.Delete(k)
		}
		return true
	})
}
