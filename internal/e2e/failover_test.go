package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// Failover under load (issue 12): a west pod opens 100 new connections a
// second to echo's clusterset service (east and north, two pods each)
// while east's gateway is killed, or hung, and then comes back. Each test
// logs the timeline that docs/benchmarks.md reports, and asserts what
// must hold: east stops taking new connections within 2 s, no connection
// opened after that fails, at most those in flight through east when it
// failed are lost, and east takes its share again once it is back.

const (
	failoverRate    = 100 // new connections per second
	failoverTimeout = 5 * time.Second
	// ejectionBound is how soon after a gateway fails it must stop taking
	// new connections.
	ejectionBound = 2 * time.Second
)

// attemptRecord is one connection of the load.
type attemptRecord struct {
	start, end time.Time
	cluster    string // who answered; "" when it failed
	err        error
}

// connLoad opens failoverRate connections per second, each on its own,
// until stopped: an open-loop load, so a slow connection does not slow
// the next ones down (a closed loop would hide the outage).
type connLoad struct {
	mu      sync.Mutex
	records []attemptRecord
	wg      sync.WaitGroup
	stop    context.CancelFunc
}

func startLoad(ctx context.Context, svc string, max time.Duration) *connLoad {
	ctx, cancel := context.WithTimeout(ctx, max)
	l := &connLoad{stop: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / failoverRate)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				start := time.Now()
				// Each connection has its own deadline: stopping the load
				// does not cut the connections in flight.
				rctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
				reply, err := west.Request(rctx, ns, svc, 80, "failover")
				cancel()
				r := attemptRecord{start: start, end: time.Now(), err: err}
				if err == nil {
					r.cluster = strings.SplitN(reply, "/", 2)[0]
				}
				l.mu.Lock()
				l.records = append(l.records, r)
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

// finish stops the load, waits for its connections, and returns them by
// start time.
func (l *connLoad) finish() []attemptRecord {
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.SortFunc(l.records, func(a, b attemptRecord) int { return a.start.Compare(b.start) })
	return l.records
}

// loadServedBy waits until the load has a connection, started after since,
// that cluster served.
func loadServedBy(ctx context.Context, l *connLoad, cluster string, since time.Time, within time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, within, true, func(context.Context) (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, ok := firstServedBy(l.records, cluster, since)
		return ok, nil
	})
}

// firstServedBy is when the first connection started after t that cluster
// served.
func firstServedBy(rs []attemptRecord, cluster string, t time.Time) (time.Time, bool) {
	for _, r := range rs {
		if r.cluster == cluster && !r.start.Before(t) {
			return r.start, true
		}
	}
	return time.Time{}, false
}

// timeline summarises the load around a failure at t0, detected at tDet,
// with the gateway back at tBack.
type timeline struct {
	total, failed, failedAfterDetection, inFlightAtFailure int
	slow                                                   int           // connections over 500 ms, all of them served
	lastSlowStart                                          time.Duration // after t0
	p50, p99, max                                          time.Duration
	recovered                                              time.Duration // tBack to east serving again
}

func summarise(rs []attemptRecord, t0, tDet, tBack time.Time) timeline {
	var tl timeline
	var lat []time.Duration
	for _, r := range rs {
		tl.total++
		d := r.end.Sub(r.start)
		lat = append(lat, d)
		if r.start.Before(t0) && r.end.After(t0) {
			tl.inFlightAtFailure++
		}
		if r.err != nil {
			tl.failed++
			if !r.start.Before(tDet) {
				tl.failedAfterDetection++
			}
			continue
		}
		if d > 500*time.Millisecond {
			tl.slow++
			tl.lastSlowStart = max(tl.lastSlowStart, r.start.Sub(t0))
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		tl.p50, tl.p99, tl.max = lat[n/2], lat[n*99/100], lat[n-1]
	}
	if back, ok := firstServedBy(rs, "east", tBack); ok {
		tl.recovered = back.Sub(tBack)
	} else {
		tl.recovered = -1
	}
	return tl
}

func (tl timeline) String() string {
	return fmt.Sprintf("%d connections at %d/s: %d failed (%d opened after detection; %d were in flight at the failure), %d slow (>500 ms), the last opened %v after the failure; latency p50 %v p99 %v max %v; east served again %v after it was back",
		tl.total, failoverRate, tl.failed, tl.failedAfterDetection, tl.inFlightAtFailure, tl.slow, tl.lastSlowStart.Round(time.Millisecond),
		tl.p50.Round(100*time.Microsecond), tl.p99.Round(time.Millisecond), tl.max.Round(time.Millisecond), tl.recovered.Round(time.Millisecond))
}

// westSees waits until cond holds of west's gateway metrics, and returns when.
func westSees(ctx context.Context, t *testing.T, what string, within time.Duration, cond func(metrics string) bool) time.Time {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		text, err := west.GatewayMetrics(ctx)
		return err == nil && cond(text), nil
	})
	if err != nil {
		t.Fatalf("west's gateway never saw %s within %v:\n%s", what, within, west.Gateway.Tail(20))
	}
	return time.Now()
}

func metricIs(text, family string, labels map[string]string, pred func(float64) bool) bool {
	v, err := sandbox.MetricSum(text, family, labels)
	return err == nil && pred(v)
}

func TestClustersetFailoverWhenAGatewayIsKilled(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	svc := contract.ClustersetName("echo")
	waitServedBy(ctx, t, svc, "east", "north")

	load := startLoad(ctx, svc, time.Minute)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	east.Gateway.Kill()
	detected := westSees(ctx, t, "east's sessions gone", 30*time.Second, func(m string) bool {
		return metricIs(m, "ferry_gateway_remote_up", map[string]string{"remote": "east"}, func(v float64) bool { return v == 0 })
	})
	time.Sleep(3 * time.Second)
	back := time.Now()
	if err := east.StartGateway(); err != nil {
		t.Fatal(err)
	}
	rs, err := recoverAndFinish(ctx, load, back)
	tl := summarise(rs, killed, detected, back)
	t.Logf("east's gateway killed (SIGKILL); west detected it in %v, and it was restarted after %v", detected.Sub(killed).Round(time.Millisecond), back.Sub(killed).Round(time.Millisecond))
	t.Logf("%v", tl)
	if err != nil {
		t.Fatalf("east never served again after its gateway restarted\nwest gateway:\n%s", west.Gateway.Tail(20))
	}
	if d := detected.Sub(killed); d > ejectionBound {
		t.Errorf("east's loss was detected %v after the kill, over %v", d, ejectionBound)
	}
	if tl.failedAfterDetection != 0 || tl.failed > tl.inFlightAtFailure {
		t.Errorf("%d connections failed, %d opened after detection (want 0) and at most the %d in flight at the kill\n%s",
			tl.failed, tl.failedAfterDetection, tl.inFlightAtFailure, failures(rs))
	}
}

func TestClustersetFailoverWhenAGatewayHangs(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	svc := contract.ClustersetName("echo")
	waitServedBy(ctx, t, svc, "east", "north")
	ejections := func(m string) float64 {
		v, _ := sandbox.MetricSum(m, "ferry_gateway_ejections_total", map[string]string{"cluster": "east"})
		return v
	}
	before, err := west.GatewayMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ejectedBefore := ejections(before)

	load := startLoad(ctx, svc, time.Minute)
	time.Sleep(2 * time.Second)
	pid := east.Gateway.PID()
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	ejected := westSees(ctx, t, "east ejected", 30*time.Second, func(m string) bool { return ejections(m) > ejectedBefore })
	time.Sleep(4 * time.Second)
	back := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	rs, err := recoverAndFinish(ctx, load, back)
	// A hung gateway fails no new connection, however early: each that
	// tries east first waits one AttemptTimeout and goes to north. Only
	// those already relaying through east when it stopped are lost.
	tl := summarise(rs, stopped, stopped, back)
	t.Logf("east's gateway hung (SIGSTOP); west ejected it after %v; it resumed (SIGCONT) after %v", ejected.Sub(stopped).Round(time.Millisecond), back.Sub(stopped).Round(time.Millisecond))
	t.Logf("%v", tl)
	if err != nil {
		t.Fatalf("east never served again after its gateway resumed\nwest gateway:\n%s", west.Gateway.Tail(20))
	}
	if d := ejected.Sub(stopped); d > ejectionBound {
		t.Errorf("east was ejected %v after it hung, over %v", d, ejectionBound)
	}
	if tl.failedAfterDetection != 0 {
		t.Errorf("%d connections opened after east hung failed; want 0\n%s", tl.failedAfterDetection, failures(rs))
	}
	if tl.failed > tl.inFlightAtFailure {
		t.Errorf("%d connections failed, more than the %d in flight when east hung\n%s", tl.failed, tl.inFlightAtFailure, failures(rs))
	}
}

// recoverAndFinish waits until east serves the load's connections again
// after back, runs the load one more second, and stops it. The error says
// east never came back; the records are there either way, for the report.
func recoverAndFinish(ctx context.Context, load *connLoad, back time.Time) ([]attemptRecord, error) {
	err := loadServedBy(ctx, load, "east", back, convergeLimit)
	time.Sleep(time.Second)
	return load.finish(), err
}

// failures lists the first failed connections, for a test's message.
func failures(rs []attemptRecord) string {
	var b strings.Builder
	n := 0
	for _, r := range rs {
		if r.err != nil && n < 10 {
			fmt.Fprintf(&b, "  %s +%v: %v\n", r.start.Format("15:04:05.000"), r.end.Sub(r.start).Round(time.Millisecond), r.err)
			n++
		}
	}
	return b.String()
}
