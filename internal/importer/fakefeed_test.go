package importer_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed"
	"ferry.dev/ferry/internal/importer"
)

var errRemoteDown = errors.New("dial tcp 198.19.0.11:4143: connect: connection refused")

// fakeFeed is an in-memory export feed with the semantics the real one
// promises: a snapshot, then deltas; resume from a version it still has;
// Connected/Disconnected around each stream; reconnects inside Run.
type fakeFeed struct {
	mu      sync.Mutex
	exports map[exports.Key]exports.Export
	version uint64
	history []feed.Update // deltas, oldest first
	up      bool
	changed chan struct{} // closed and replaced on every change
	streams int           // streams opened, for tests
	// lost is the number of streams opened when Partition was last
	// called: those deliver nothing more, ever (their packets were lost).
	lost     int
	resumed  []uint64 // resumeFrom of each stream
	snapshot []bool   // whether each stream started with a snapshot
}

func newFakeFeed(es ...exports.Export) *fakeFeed {
	f := &fakeFeed{exports: map[exports.Key]exports.Export{}, up: true, changed: make(chan struct{}), version: 100}
	for _, e := range es {
		f.exports[e.Key] = e
	}
	return f
}

func (f *fakeFeed) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Set upserts exports in one version.
func (f *fakeFeed) Set(es ...exports.Export) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for _, e := range es {
		f.exports[e.Key] = e
	}
	f.history = append(f.history, feed.Update{Version: f.version, Upserts: es})
	f.notifyLocked()
}

// Delete removes exports in one version.
func (f *fakeFeed) Delete(ks ...exports.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	for _, k := range ks {
		delete(f.exports, k)
	}
	f.history = append(f.history, feed.Update{Version: f.version, Deletes: ks})
	f.notifyLocked()
}

// SetUp cuts (false) or restores (true) the stream.
func (f *fakeFeed) SetUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = up
	f.notifyLocked()
}

// Partition loses every open stream, as a partition that drops packets
// silently does: they stay open and deliver nothing more, no heartbeat
// either, and the client is not told. Streams opened later work.
func (f *fakeFeed) Partition() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost = f.streams
	f.notifyLocked()
}

func (f *fakeFeed) Version() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

func (f *fakeFeed) Streams() (n int, resumed []uint64, snapshot []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams, append([]uint64(nil), f.resumed...), append([]bool(nil), f.snapshot...)
}

// Run implements importer.Feed.
func (f *fakeFeed) Run(ctx context.Context, h feed.Handler, resumeFrom uint64) error {
	last := resumeFrom
	for {
		f.mu.Lock()
		up, ch := f.up, f.changed
		f.mu.Unlock()
		if !up {
			h.Disconnected(errRemoteDown)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ch:
				continue
			}
		}
		var err error
		last, err = f.stream(ctx, h, last)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.mu.Lock()
		up = f.up
		f.mu.Unlock()
		if up { // a reset without an outage; an outage is reported above
			h.Disconnected(err)
		}
	}
}

// stream serves one connection until the feed goes down or ctx ends.
func (f *fakeFeed) stream(ctx context.Context, h feed.Handler, from uint64) (uint64, error) {
	f.mu.Lock()
	f.streams++
	id := f.streams
	f.resumed = append(f.resumed, from)
	var first feed.Update
	oldest := f.version
	if len(f.history) > 0 {
		oldest = f.history[0].Version - 1
	}
	if from > 0 && from >= oldest && from <= f.version {
		first = feed.Update{Version: f.version}
		for _, d := range f.history {
			if d.Version > from {
				first.Upserts = append(first.Upserts, d.Upserts...)
				first.Deletes = append(first.Deletes, d.Deletes...)
			}
		}
		f.snapshot = append(f.snapshot, false)
	} else {
		first = feed.Update{Version: f.version, Snapshot: true}
		for _, e := range f.exports {
			first.Upserts = append(first.Upserts, e)
		}
		f.snapshot = append(f.snapshot, true)
	}
	sent := f.version
	ch := f.changed
	f.mu.Unlock()

	h.Connected()
	if first.Snapshot || len(first.Upserts)+len(first.Deletes) > 0 {
		h.Apply(first)
	}
	heartbeat := time.NewTicker(50 * time.Millisecond)
	defer heartbeat.Stop()
	lost := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return id <= f.lost
	}
	for {
		if lost() {
			<-ctx.Done()
			return sent, ctx.Err()
		}
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-heartbeat.C:
			if !lost() {
				h.Heartbeat(sent)
			}
			continue
		case <-ch:
		}
		f.mu.Lock()
		if id <= f.lost {
			f.mu.Unlock()
			continue // lost while it waited: deliver nothing
		}
		if !f.up {
			f.mu.Unlock()
			return sent, errors.New("stream reset by peer")
		}
		var deltas []feed.Update
		for _, d := range f.history {
			if d.Version > sent {
				deltas = append(deltas, d)
			}
		}
		sent, ch = f.version, f.changed
		f.mu.Unlock()
		for _, d := range deltas {
			h.Apply(d)
		}
	}
}

// fakeProber answers probes from a switch.
type fakeProber struct {
	mu   sync.Mutex
	down bool
	fail int // the next probes that fail while not down
	n    int
}

func (p *fakeProber) Probe(context.Context, importer.ProbeTarget) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.fail > 0 {
		p.fail--
		return errRemoteDown
	}
	if p.down {
		return errRemoteDown
	}
	return nil
}

// FailNext makes the next k probes fail, and returns how many probes have
// run so far.
func (p *fakeProber) FailNext(k int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = k
	return p.n
}

// Probes is how many probes have run.
func (p *fakeProber) Probes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *fakeProber) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}
