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
//
// The state lives in small structs that SetRoutes resolves once per route
// (destHealth), so that the per-connection checks are a few atomic loads,
// with no map lookup and no lock.

// ejection is one breaker: a whole cluster's (a failure of its gateway:
// unreachable, overloaded, draining, every service there as unreachable), or
// one service's there (no ready endpoint, or an attempt that timed out). Closed (streak 0), it admits
// every connection. Open (now < until), it admits none. Half-open (the
// ejection has ended but no attempt has succeeded since), it admits one
// connection at a time, the trial: the others keep going elsewhere until the
// trial succeeds, so an ejected cluster comes back on the strength of one
// connection, not of the hundred that arrive the moment its ejection ends.
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

// silence tells a destination that has gone quiet: attempts are waiting
// for it and it has answered none of them for a while. A hung gateway is
// silent long before the first attempt's AttemptTimeout ends; a busy
// healthy one answers every few milliseconds.
type silence struct {
	waiting atomic.Int32
	// since is when the cluster was last heard from (an answer, a
	// rejection included), or when an attempt began to wait with none
	// waiting before, whichever is later: unix nanoseconds.
	since atomic.Int64
}

// clusterState is what the ejector knows of one cluster: the breaker for
// failures of its gateway (unreachable, overloaded, draining).
type clusterState struct {
	ejection
}

// serviceState is what it knows of one service there: the breaker for
// failures that may be the service's own (no ready endpoint, an attempt
// that timed out: ingress answers only once the backend accepted, so a
// slow backend looks like a slow gateway), and whether its attempts have
// gone unanswered. Neither spreads to the cluster's other services: one
// slow backend must not move a whole cluster's traffic.
type serviceState struct {
	ejection
	quiet silence
}

// destHealth is one destination's state: its cluster's and its service's
// there. SetRoutes resolves it once per route.
type destHealth struct {
	cluster *clusterState
	service *serviceState
}

type serviceKey struct {
	cluster string
	target  tunnel.Target
}

// ejector keeps the ejections of one egress.
type ejector struct {
	base, max   time.Duration
	trialWindow time.Duration
	// quietAfter is how long a cluster may leave waiting attempts
	// unanswered before new connections try it only after the others.
	quietAfter time.Duration
	now        func() time.Time
	onEject    func(cluster string, scope string)

	mu       sync.Mutex
	clusters map[string]*clusterState
	services map[serviceKey]*serviceState
}

func newEjector(base, max, trialWindow, quietAfter time.Duration, now func() time.Time, onEject func(cluster, scope string)) *ejector {
	return &ejector{
		base: base, max: max, trialWindow: trialWindow, quietAfter: quietAfter, now: now, onEject: onEject,
		clusters: map[string]*clusterState{}, services: map[serviceKey]*serviceState{},
	}
}

// health returns d's state, created on first use. Called by SetRoutes, not
// per connection.
func (j *ejector) health(d Destination) destHealth {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.clusters[d.Cluster]
	if c == nil {
		c = &clusterState{}
		j.clusters[d.Cluster] = c
	}
	k := serviceKey{d.Cluster, d.Target}
	s := j.services[k]
	if s == nil {
		s = &serviceState{}
		j.services[k] = s
	}
	return destHealth{cluster: c, service: s}
}

// keepOnly drops the state of destinations no route has any more, so that
// service churn does not grow the maps. Routes still holding a dropped
// state keep using it until they are replaced.
func (j *ejector) keepOnly(routes map[int]Route) {
	clusters, services := map[string]bool{}, map[serviceKey]bool{}
	for _, r := range routes {
		for _, d := range r.Destinations {
			clusters[d.Cluster] = true
			services[serviceKey{d.Cluster, d.Target}] = true
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for c := range j.clusters {
		if !clusters[c] {
			delete(j.clusters, c)
		}
	}
	for k := range j.services {
		if !services[k] {
			delete(j.services, k)
		}
	}
}

// waiting records that an attempt waits for h's service; call done with
// whether it was answered (accepted or rejected) when it ends.
func (j *ejector) waiting(h destHealth) (done func(answered bool)) {
	q := &h.service.quiet
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

// breaker states.
const (
	closed = iota
	open
	halfOpen
)

func (j *ejector) state(e *ejection, now int64) int {
	switch {
	case now < e.until.Load():
		return open
	case e.streak.Load() == 0:
		return closed
	}
	return halfOpen
}

// claim takes e's trial when no trial is under way; release gives it back.
func (j *ejector) claim(e *ejection, now int64) (prev int64, ok bool) {
	t := e.trial.Load()
	return t, now-t >= int64(j.trialWindow) && e.trial.CompareAndSwap(t, now)
}

// admit reports whether a connection may try the destination in its first
// pass. Asked only right before the attempt: a half-open breaker's
// admission is its one trial, and a trial is claimed only when both
// breakers admit, so a connection whose service is still ejected does not
// use up its cluster's trial. A local destination is never quiet: it is
// not a gateway.
func (j *ejector) admit(h destHealth, local bool, now int64) bool {
	if !local {
		q := &h.service.quiet
		if q.waiting.Load() > 0 && now-q.since.Load() >= int64(j.quietAfter) {
			return false
		}
	}
	cs, ss := j.state(&h.cluster.ejection, now), j.state(&h.service.ejection, now)
	if cs == open || ss == open {
		return false
	}
	var prev int64
	if cs == halfOpen {
		var ok bool
		if prev, ok = j.claim(&h.cluster.ejection, now); !ok {
			return false
		}
	}
	if ss == halfOpen {
		if _, ok := j.claim(&h.service.ejection, now); !ok {
			if cs == halfOpen {
				h.cluster.trial.Store(prev)
			}
			return false
		}
	}
	return true
}

// ejected reports, without claiming a trial, whether h is ejected now.
func (j *ejector) ejected(h destHealth, now int64) bool {
	return now < h.cluster.until.Load() || now < h.service.until.Load()
}

// failed ejects d's cluster, or only its service there, for
// base × 2^(streak-1), capped at max, with ±20% jitter so that clusters
// ejected together do not all return together. It returns how long, and
// whether this failure started the ejection (rather than joined one).
func (j *ejector) failed(h destHealth, d Destination, wholeCluster bool) (time.Duration, bool) {
	e, scope := &h.service.ejection, "service"
	if wholeCluster {
		e, scope = &h.cluster.ejection, "cluster"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := j.now()
	if now.UnixNano() < e.until.Load() {
		// Connections that were already trying when the first one failed
		// report the same failure: it is one ejection, not several.
		return time.Duration(e.until.Load() - now.UnixNano()), false
	}
	streak := e.streak.Add(1)
	d0 := j.base
	for i := int32(1); i < streak && d0 < j.max; i++ {
		d0 *= 2
	}
	d0 = min(time.Duration(float64(min(d0, j.max))*(0.8+0.4*rand.Float64())), j.max)
	e.until.Store(now.Add(d0).UnixNano())
	e.trial.Store(0)
	if j.onEject != nil {
		j.onEject(d.Cluster, scope)
	}
	return d0, true
}

// succeeded closes h's breakers, ending an ejection under way (a
// connection that reached the destination in the second pass proves it
// serves): the next failure ejects for base again.
func (j *ejector) succeeded(h destHealth) {
	for _, e := range [2]*ejection{&h.cluster.ejection, &h.service.ejection} {
		if e.streak.Load() != 0 {
			e.mu.Lock()
			e.streak.Store(0)
			e.trial.Store(0)
			e.until.Store(0)
			e.mu.Unlock()
		}
	}
}
