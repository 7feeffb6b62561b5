package importer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
)

// Feed restart backoff, for when a Feed's Run returns before its context
// ends (the feed client does its own reconnects inside Run).
const (
	feedBackoffMin = 500 * time.Millisecond
	feedBackoffMax = 30 * time.Second
	// feedHealthyRun is how long Run must have lasted for the backoff to
	// start again from its minimum.
	feedHealthyRun = time.Minute
)

// errNoFeed is reported when the controller was built without a feed
// client.
var errNoFeed = errors.New("this controller has no feed client configured")

// session is one Link's connection to its remote: the feed stream and the
// probe loop. It only records what it learns and asks for reconciles.
type session struct {
	key     string
	cluster string
	state   *feedState
	health  *healthTracker
	cancel  context.CancelFunc
	done    chan struct{}
	// kickFeed asks the feed loop to drop its connection and dial again at
	// once: it cancels the running stream (cancelRun, with errRedial), or,
	// between streams, cuts the backoff short (redial).
	runMu     sync.Mutex
	cancelRun context.CancelCauseFunc
	redial    chan struct{}
}

// errRedial is the cause of a stream cancelled by kickFeed.
var errRedial = errors.New("the remote answers again after an outage the feed did not hear")

// sessionKey changes whenever the session must be restarted: a new address,
// identity or probe setting.
func sessionKey(l *ferryv1.Link, id identity.ID) string {
	return fmt.Sprintf("%q|%s|%+v", l.Spec.GatewayAddresses, id, settingsOf(l))
}

type sessionDeps struct {
	clock   clock.Clock
	feed    FeedDialer
	prober  Prober
	tls     *identity.Source
	log     *slog.Logger
	trigger func() // enqueues the Link; never blocks
	// touch records the exports a feed update changed and enqueues the
	// Link; never blocks.
	touch   func(all bool, keys ...exports.Key)
	applied func() // Options.OnFeedChange
	probed  func(time.Duration, error)
}

func startSession(parent context.Context, l *ferryv1.Link, id identity.ID, d sessionDeps) *session {
	ctx, cancel := context.WithCancel(parent)
	settings := settingsOf(l)
	s := &session{
		key:     sessionKey(l, id),
		cluster: l.Spec.ClusterName,
		state:   newFeedState(d.clock, d.touch, d.applied),
		health:  newHealthTracker(settings, d.clock.Now()),
		cancel:  cancel,
		done:    make(chan struct{}),
		redial:  make(chan struct{}, 1),
	}
	addrs := slices.Clone(l.Spec.GatewayAddresses)
	log := d.log.With("link", l.Name, "cluster", l.Spec.ClusterName)
	cfg := feed.ClientConfig{Addresses: addrs, ServerID: id, TLS: d.tls, Logger: log}
	target := ProbeTarget{Link: l.Name, Addresses: addrs, Identity: id}
	feedDone, probeDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(feedDone); s.runFeed(ctx, d, cfg, log) }()
	go func() { defer close(probeDone); s.runProbes(ctx, d, target, settings, log) }()
	go func() { <-feedDone; <-probeDone; close(s.done) }()
	return s
}

func (s *session) stop() {
	s.cancel()
	<-s.done
}

func (s *session) runFeed(ctx context.Context, d sessionDeps, cfg feed.ClientConfig, log *slog.Logger) {
	if d.feed == nil {
		s.state.Disconnected(errNoFeed)
		return
	}
	backoff := feedBackoffMin
	for ctx.Err() == nil {
		began := d.clock.Now()
		runCtx, stopRun := context.WithCancelCause(ctx)
		s.setRun(stopRun)
		f, err := d.feed(cfg)
		if err == nil {
			err = f.Run(runCtx, s.state, s.state.resumeFrom())
		}
		s.setRun(nil)
		stopRun(nil)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(context.Cause(runCtx), errRedial) {
			log.Info("reconnecting the feed now", "reason", errRedial)
			backoff = feedBackoffMin
			continue
		}
		if err == nil {
			err = errors.New("feed stream ended")
		}
		log.Warn("feed stopped; restarting", "err", err, "backoff", backoff)
		s.state.Disconnected(err)
		if d.clock.Since(began) > feedHealthyRun {
			backoff = feedBackoffMin
		}
		jitter := time.Duration(rand.Int64N(int64(backoff)/5 + 1))
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(backoff + jitter):
		case <-s.redial: // the remote answers again: no reason to wait
		}
		backoff = min(2*backoff, feedBackoffMax)
	}
}

// runProbes probes every period and asks for a reconcile only when the
// health level changes (or the first result arrives), so a healthy or a
// steadily dead remote costs no reconcile and no write.
func (s *session) runProbes(ctx context.Context, d sessionDeps, t ProbeTarget, set probeSettings, log *slog.Logger) {
	if d.prober == nil {
		return
	}
	var last healthView
	first := true
	// failingSince is when the current run of failed probes began; zero
	// while probes succeed.
	var failingSince time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, set.Timeout)
		began := time.Now()
		err := d.prober.Probe(pctx, t)
		took := time.Since(began) // the real duration, whatever clock the session runs on
		cancel()
		if ctx.Err() != nil {
			return
		}
		if d.probed != nil {
			d.probed(took, err)
		}
		now := d.clock.Now()
		switch {
		case err != nil && failingSince.IsZero():
			failingSince = now
		case err == nil && !failingSince.IsZero():
			// The remote answers again. A feed that heard nothing since it
			// went silent may sit on a connection whose packets were lost
			// (a partition drops them silently; TCP retransmits on a
			// backoff of its own that reaches tens of seconds), or wait
			// out a reconnect backoff: either way it would lag the probe
			// by seconds. A fresh connection resumes from the last
			// version at once.
			// Only after an outage by the probe's own measure (the level
			// had dropped): a glitch under the failure threshold says
			// nothing about the feed, which merely had no heartbeat due.
			if last.Level != mirror.Healthy && s.state.lastContact().Before(failingSince) {
				s.kickFeed()
			}
			failingSince = time.Time{}
		}
		s.health.observe(err, now)
		v := s.health.view(now, s.state.lastContact())
		if first || v.Level != last.Level {
			if !first {
				log.Info("remote gateway health changed", "from", last.Level, "to", v.Level, "err", err)
			}
			d.trigger()
		}
		first, last = false, v
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(set.Period):
		}
	}
}

// kickFeed asks the feed loop to reconnect now; it never blocks.
func (s *session) kickFeed() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.cancelRun != nil {
		s.cancelRun(errRedial)
		return
	}
	select {
	case s.redial <- struct{}{}:
	default: // one is pending already
	}
}

// setRun records the running stream's cancel (nil between streams). A new
// stream satisfies a kick that was pending, so its token is dropped.
func (s *session) setRun(cancel context.CancelCauseFunc) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	s.cancelRun = cancel
	if cancel != nil {
		select {
		case <-s.redial:
		default:
		}
	}
}

func (s *feedState) lastContact() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastMessage
}
