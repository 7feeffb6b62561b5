package chaos

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// Soak bounds: what "flat" means. Over the window after warm-up, the
// least-squares trend of a daemon's RSS may add at most SoakRSSDrift, and
// of its goroutines at most SoakGoroutineDrift: a leak of a few hundred
// bytes a request, or a goroutine every minute, exceeds them in 30 min.
const (
	SoakRSSDrift       = 8 << 20
	SoakGoroutineDrift = 10
	// SoakSample is how often every daemon is sampled.
	SoakSample = 5 * time.Second
	// SoakChurnRate is the export changes a second beside the traffic.
	SoakChurnRate = 2
)

// soakSeries is one daemon's samples.
type soakSeries struct {
	name            string
	at, rss, gorout []float64
}

// Soak sends rate requests a second from west through every path (east's
// mirror, north's, and the clusterset name spread over both) while east's
// exports churn at SoakChurnRate, for d. It samples every daemon's RSS and
// goroutines every SoakSample and reports, per daemon, the trend after the
// first fifth of the run (the warm-up). 0 requests may fail.
func (e *Env) Soak(ctx context.Context, d time.Duration, rate int) (row Row, err error) {
	row = Row{ID: "SOAK", Scenario: fmt.Sprintf("%s of churn (%d changes/s) and %d requests/s through every path", d, SoakChurnRate, rate),
		Criterion: fmt.Sprintf("RSS (≤ %d MiB) and goroutines (≤ %d) of every daemon flat after warm-up, by their trend over the window; 0 failed requests", SoakRSSDrift>>20, SoakGoroutineDrift)}
	runCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	tr := e.startTraffic(ctx, rate, trafficPaths())
	var wg sync.WaitGroup
	wg.Add(1)
	ch := newChurner(e.East, uint64(time.Now().UnixNano()))
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / SoakChurnRate)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				_ = ch.step(runCtx) // a change cut short by the end is no failure
			}
		}
	}()
	series, err := e.sample(runCtx, d)
	stop()
	wg.Wait()
	sent, failed, first := tr.stop()
	if err != nil {
		return row, err
	}
	row.Pass = failed == 0
	worstRSS, worstG := 0.0, 0.0
	for _, s := range series {
		warm := len(s.at) / 5
		rssDrift := trend(s.at[warm:], s.rss[warm:])
		gDrift := trend(s.at[warm:], s.gorout[warm:])
		worstRSS, worstG = math.Max(worstRSS, rssDrift), math.Max(worstG, gDrift)
		flat := rssDrift <= SoakRSSDrift && gDrift <= SoakGoroutineDrift
		row.Pass = row.Pass && flat
		row.detail("%s: RSS %.0f → %.0f MiB, trend %+.1f MiB; goroutines %.0f → %.0f, trend %+.1f (%d samples after warm-up)",
			s.name, s.rss[warm]/(1<<20), s.rss[len(s.rss)-1]/(1<<20), rssDrift/(1<<20), s.gorout[warm], s.gorout[len(s.gorout)-1], gDrift, len(s.at)-warm)
	}
	row.Figure = fmt.Sprintf("%d requests, %d failed; worst trend after warm-up: RSS %+.1f MiB, goroutines %+.1f; %d export changes",
		sent, failed, worstRSS/(1<<20), worstG, ch.ops)
	if first != "" {
		row.detail("first failure: %s", first)
	}
	return row, nil
}

// sample records every daemon's RSS and goroutines every SoakSample until
// ctx ends.
func (e *Env) sample(ctx context.Context, d time.Duration) ([]*soakSeries, error) {
	type daemonRef struct {
		c    *sandbox.Cluster
		name string
	}
	var refs []daemonRef
	for _, c := range e.SB.Clusters {
		refs = append(refs, daemonRef{c, contract.ControllerName}, daemonRef{c, contract.GatewayName})
	}
	series := make([]*soakSeries, len(refs))
	for i, r := range refs {
		series[i] = &soakSeries{name: r.c.Name + "/" + r.name}
	}
	start := time.Now()
	tick := time.NewTicker(SoakSample)
	defer tick.Stop()
	for {
		for i, r := range refs {
			p, metrics := r.c.Controller, r.c.ControllerMetrics
			if r.name == contract.GatewayName {
				p, metrics = r.c.Gateway, r.c.GatewayMetrics
			}
			rss, err := p.RSS()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", series[i].name, err)
			}
			mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			text, err := metrics(mctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: metrics: %w", series[i].name, err)
			}
			g, err := sandbox.MetricSum(text, "go_goroutines", nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", series[i].name, err)
			}
			s := series[i]
			s.at, s.rss, s.gorout = append(s.at, time.Since(start).Seconds()), append(s.rss, float64(rss)), append(s.gorout, g)
		}
		select {
		case <-ctx.Done():
			if len(series[0].at) < 5 {
				return nil, fmt.Errorf("soak: %s gave %d samples, too few for a trend", d, len(series[0].at))
			}
			return series, nil
		case <-tick.C:
		}
	}
}

// trend is how much the least-squares line through (x, y) rises from the
// first x to the last: a leak's growth over the window, not its noise.
func trend(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx, sy, sxx, sxy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	slope := (n*sxy - sx*sy) / den
	return slope * (x[len(x)-1] - x[0])
}
