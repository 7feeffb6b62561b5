package importer

import (
	"errors"
	"testing"
	"time"

	"ferry.dev/ferry/internal/mirror"
)

func TestHealthTracker(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	fail := errors.New("refused")
	type step struct {
		at       int
		err      error // observed at this time (nil = success), unless noProbe
		noProbe  bool
		lastFeed int // seconds, -1 = never
		want     mirror.Health
	}
	cases := []struct {
		name     string
		settings probeSettings
		steps    []step
	}{
		{"healthy until the threshold", probeSettings{Threshold: 3}, []step{
			{at: 0, noProbe: true, lastFeed: -1, want: mirror.Healthy}, // assumed before any probe
			{at: 0, err: nil, lastFeed: -1, want: mirror.Healthy},
			{at: 1, err: fail, lastFeed: -1, want: mirror.Healthy},
			{at: 2, err: fail, lastFeed: -1, want: mirror.Healthy},
			{at: 3, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 4, err: nil, lastFeed: -1, want: mirror.Healthy}, // one success recovers
		}},
		// Issue 12: a Link to an address where nothing listens showed
		// GatewayHealthy=True for a threshold's worth of probes.
		{"never answered: unhealthy from the first failure", probeSettings{Threshold: 3}, []step{
			{at: 0, noProbe: true, lastFeed: -1, want: mirror.Healthy},
			{at: 1, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 2, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 3, err: nil, lastFeed: -1, want: mirror.Healthy},
			{at: 4, err: fail, lastFeed: -1, want: mirror.Healthy}, // now it has answered: the threshold applies
		}},
		{"a feed message counts as an answer", probeSettings{Threshold: 3}, []step{
			{at: 1, err: fail, lastFeed: 1, want: mirror.Healthy},
		}},
		{"stale after the limit, counted from the last contact", probeSettings{Threshold: 1, StalenessLimit: 10 * time.Second}, []step{
			{at: 1, err: nil, lastFeed: -1, want: mirror.Healthy},
			{at: 2, err: fail, lastFeed: 5, want: mirror.Unhealthy},
			{at: 14, err: fail, lastFeed: 5, want: mirror.Unhealthy},
			{at: 15, err: fail, lastFeed: 5, want: mirror.Stale},
			{at: 16, err: nil, lastFeed: 5, want: mirror.Healthy},
		}},
		{"a restart never withdraws early", probeSettings{Threshold: 1, StalenessLimit: 10 * time.Second}, []step{
			{at: 1, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 9, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 10, err: fail, lastFeed: -1, want: mirror.Stale},
		}},
		{"no limit, never stale", probeSettings{Threshold: 1}, []step{
			{at: 1, err: fail, lastFeed: -1, want: mirror.Unhealthy},
			{at: 100000, err: fail, lastFeed: -1, want: mirror.Unhealthy},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHealthTracker(tc.settings, t0)
			for i, s := range tc.steps {
				if !s.noProbe {
					h.observe(s.err, at(s.at))
				}
				var feed time.Time
				if s.lastFeed >= 0 {
					feed = at(s.lastFeed)
				}
				if got := h.view(at(s.at), feed).Level; got != s.want {
					t.Fatalf("step %d (t=%ds): %s, want %s", i, s.at, got, s.want)
				}
			}
		})
	}
}
