package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// Churn and convergence bounds of R4.
const (
	// ChurnRate is how many export changes a second the churn makes.
	ChurnRate = 20
	// ConvergeTimeout bounds one cycle's wait for west to match the
	// checker; a cycle that takes longer fails the scenario.
	ConvergeTimeout = 60 * time.Second
	// IdleRestartSettle is how long R4 watches the audit log after
	// restarting a process with nothing changed.
	IdleRestartSettle = 5 * time.Second
	// IdleQuiet is how long no Ferry daemon may have written anything
	// before an idle restart: the checker sees mirrors and imports, not
	// the port claims a release still has to write, and what the old
	// process left to do is not the new one's restart writing.
	IdleQuiet = 2 * time.Second
)

// daemon names one Ferry process of the sandbox that R4 may kill.
type daemon struct {
	cluster *sandbox.Cluster
	name    string // contract.ControllerName or contract.GatewayName
}

func (d daemon) String() string { return d.cluster.Name + "/" + d.name }

func (d daemon) proc() *testenv.Process {
	if d.name == contract.ControllerName {
		return d.cluster.Controller
	}
	return d.cluster.Gateway
}

func (d daemon) start(ctx context.Context) error {
	start, port := d.cluster.StartController, contract.ControllerAdminPort
	if d.name == contract.GatewayName {
		start, port = d.cluster.StartGateway, contract.GatewayAdminPort
	}
	if err := start(); err != nil {
		return err
	}
	return ready(ctx, d.cluster, d.proc(), port)
}

// R4 churns east's exports at ChurnRate a second and, cycles times, kills
// a random Ferry process (either controller, either gateway; kill -9) at a
// random moment, restarts it as its pod would, lets the churn run on, then
// pauses the churn and times until west holds what the independent checker
// computes from the exports alone. Afterwards it restarts each process
// once with nothing changed, and reads the API servers' audit logs: Ferry
// may not write any object of the workload namespace it does not own, and
// an idle restart may not write at all.
func (e *Env) R4(ctx context.Context, cycles int, seed uint64) (row Row, err error) {
	row = Row{ID: "R4", Scenario: fmt.Sprintf("%d cycles of kill -9 on a random Ferry process (either controller, either gateway) during churn at %d changes/s", cycles, ChurnRate),
		Criterion: "final state equals the independently computed desired state every cycle; 0 writes to objects Ferry does not own; an idle restart writes nothing"}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	ch := newChurner(e.East, seed)
	daemons := []daemon{{e.West, contract.ControllerName}, {e.West, contract.GatewayName}, {e.East, contract.ControllerName}, {e.East, contract.GatewayName}}
	began := time.Now()
	var converge []time.Duration
	killed := map[string]int{}
	for i := range cycles {
		d := daemons[rng.IntN(len(daemons))]
		// Churn for a random while, kill, restart after a pod's delay,
		// churn on, then stop and wait for west to agree.
		if err := e.churnFor(ctx, ch, time.Duration(200+rng.IntN(800))*time.Millisecond); err != nil {
			return row, err
		}
		d.proc().Kill()
		killed[d.String()]++
		if err := e.churnFor(ctx, ch, time.Duration(rng.IntN(500))*time.Millisecond); err != nil {
			return row, err
		}
		if err := d.start(ctx); err != nil {
			return row, fmt.Errorf("cycle %d: restart %s: %w", i+1, d, err)
		}
		if err := e.churnFor(ctx, ch, time.Duration(rng.IntN(1000))*time.Millisecond); err != nil {
			return row, err
		}
		took, err := e.converge(ctx)
		if err != nil {
			return row, fmt.Errorf("cycle %d (killed %s): %w", i+1, d, err)
		}
		converge = append(converge, took)
		e.Logf("R4: cycle %d/%d: killed %s, converged %s after the churn stopped", i+1, cycles, d, since(took))
	}
	mirrors, imports, err := desired(ctx, []*sandbox.Cluster{e.East, e.North}, e.West)
	if err != nil {
		return row, err
	}
	row.detail("the final state checked: %d mirrors and %d ServiceImports in west", len(mirrors), len(imports))
	foreign, err := e.foreignWrites(began)
	if err != nil {
		return row, err
	}
	idle := 0
	for _, d := range daemons {
		n, err := e.idleRestart(ctx, d)
		if err != nil {
			return row, err
		}
		idle += n
		row.detail("idle restart of %s: %d writes", d, n)
	}
	slices.Sort(converge)
	pct := func(p int) time.Duration { return converge[min(len(converge)-1, len(converge)*p/100)] }
	row.Pass = len(foreign) == 0 && idle == 0
	row.Figure = fmt.Sprintf("%d/%d cycles converged: p50 %s, p99 %s, max %s; %d writes to objects Ferry does not own; %d writes after idle restarts",
		len(converge), cycles, since(pct(50)), since(pct(99)), since(converge[len(converge)-1]), len(foreign), idle)
	row.detail("%d export changes; kills: %v", ch.ops, killed)
	for i, ev := range foreign {
		if i == 5 {
			row.detail("… %d more", len(foreign)-5)
			break
		}
		row.detail("write to an object Ferry does not own: %s", ev)
	}
	return row, nil
}

// churnFor makes export changes at ChurnRate for d.
func (e *Env) churnFor(ctx context.Context, ch *churner, d time.Duration) error {
	tick := time.NewTicker(time.Second / ChurnRate)
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			return nil
		case <-tick.C:
			if err := ch.step(ctx); err != nil {
				return err
			}
		}
	}
}

// converge waits until the checker finds no difference, and returns how
// long that took.
func (e *Env) converge(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var diffs []string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, ConvergeTimeout, true, func(ctx context.Context) (bool, error) {
		d, err := e.Check(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // an API server may be busy; check again
		}
		diffs = d
		return len(d) == 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("west never matched the exports (%w): %s", err, strings.Join(diffs, "; "))
	}
	return time.Since(start), nil
}

// ferryAgent says whether a user agent is one of Ferry's daemons.
func ferryAgent(ua string) bool {
	return strings.HasPrefix(ua, contract.ControllerName+"/") || strings.HasPrefix(ua, contract.GatewayName+"/")
}

// foreignWrites returns Ferry's writes, since since, to objects of the
// workload namespace that someone else created: the user's Services,
// slices and ServiceExports. Ferry owns only a ServiceExport's status.
func (e *Env) foreignWrites(since time.Time) ([]testenv.AuditEvent, error) {
	var out []testenv.AuditEvent
	for _, c := range e.SB.Clusters {
		all, err := c.API.AuditedWrites(func(ev testenv.AuditEvent) bool { return ev.ObjectRef.Namespace == Namespace })
		if err != nil {
			return nil, err
		}
		theirs := map[string]bool{}
		for _, ev := range all {
			if ev.Verb == "create" && !ferryAgent(ev.UserAgent) {
				theirs[ev.ObjectRef.Resource+"/"+ev.ObjectRef.Name] = true
			}
		}
		for _, ev := range all {
			if !ferryAgent(ev.UserAgent) || ev.Received.Before(since) || ev.Resource() == "serviceexports/status" {
				continue
			}
			if theirs[ev.ObjectRef.Resource+"/"+ev.ObjectRef.Name] {
				out = append(out, ev)
			}
		}
	}
	return out, nil
}

// ferryStateWrite is a write by a Ferry daemon that changes state: not its
// Lease, an Event or an access review.
func ferryStateWrite(ev testenv.AuditEvent) bool {
	return ferryAgent(ev.UserAgent) && ev.Stores() && ev.ObjectRef.Resource != "leases" && ev.ObjectRef.Resource != "events"
}

// waitQuiet waits until no API server has taken a state write from Ferry
// for IdleQuiet.
func (e *Env) waitQuiet(ctx context.Context) error {
	var last time.Time
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, ConvergeTimeout, true, func(context.Context) (bool, error) {
		for _, c := range e.SB.Clusters {
			evs, err := c.API.AuditedWrites(ferryStateWrite)
			if err != nil {
				return false, err
			}
			if n := len(evs); n > 0 && evs[n-1].Received.After(last) {
				last = evs[n-1].Received
			}
		}
		return time.Since(last) >= IdleQuiet, nil
	})
	if err != nil {
		return fmt.Errorf("ferry's daemons kept writing (last at %s): %w", last.Format(time.RFC3339Nano), err)
	}
	return nil
}

// idleRestart restarts d (SIGTERM, then start) with nothing changed, waits
// IdleRestartSettle after it is ready, and returns how many writes it made
// in that time, its Lease and Events aside.
func (e *Env) idleRestart(ctx context.Context, d daemon) (int, error) {
	if _, err := e.converge(ctx); err != nil {
		return 0, err
	}
	if err := e.waitQuiet(ctx); err != nil {
		return 0, err
	}
	d.proc().Stop(30 * time.Second)
	started := time.Now()
	if err := d.start(ctx); err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(IdleRestartSettle):
	}
	prefix := d.name + "/"
	writes, err := d.cluster.API.AuditedWrites(func(ev testenv.AuditEvent) bool {
		return strings.HasPrefix(ev.UserAgent, prefix) && !ev.Received.Before(started) && ferryStateWrite(ev)
	})
	if err != nil {
		return 0, err
	}
	for _, ev := range writes {
		e.Logf("R4: idle restart of %s wrote: %s", d, ev)
	}
	return len(writes), nil
}
