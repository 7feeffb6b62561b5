package chaos

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// R1Limit is the pass criterion: west holds what east exports this soon
// after the partition heals or east's API server is back.
const R1Limit = 5 * time.Second

// R1 partitions west from east (silently dropped packets, both ways) for
// partitionFor while east's exports churn, then heals it; then it restarts
// east's API server (kill -9) and changes east's exports again. It times
// west's mirrors turning not-ready once the Link's probe fails, and west's
// convergence (the independent checker) after the heal and after the
// restart, and it counts, in west's audit log, every mirror Service or
// slice west's controller deleted meanwhile: nothing of east may go while
// east cannot be heard.
func (e *Env) R1(ctx context.Context, partitionFor time.Duration, seed uint64) (row Row, err error) {
	row = Row{ID: "R1", Scenario: fmt.Sprintf("west and east partitioned for %s while east's exports churn, then healed; east's API server restarted (kill -9)", partitionFor),
		Criterion: fmt.Sprintf("west converges ≤ %s after the heal and after the restart; no mirror deleted meanwhile; readiness follows the probe", R1Limit)}
	if _, err := e.converge(ctx); err != nil {
		return row, err
	}
	ch := newChurner(e.East, seed)
	began := time.Now()
	heal, err := e.SB.Net.Partition("west", "east")
	if err != nil {
		return row, err
	}
	healed := false
	defer func() {
		if !healed {
			_ = heal()
		}
	}()
	e.Logf("R1: west and east partitioned for %s", partitionFor)
	notReady := make(chan time.Duration, 1)
	go func() { notReady <- e.waitEastUnready(ctx, partitionFor) }()
	if err := e.churnFor(ctx, ch, partitionFor); err != nil {
		return row, err
	}
	if err := heal(); err != nil {
		return row, err
	}
	healed = true
	healedAt := time.Now()
	unready := <-notReady
	afterHeal, err := e.converge(ctx)
	if err != nil {
		return row, fmt.Errorf("after the heal: %w", err)
	}
	e.Logf("R1: healed; west converged %s later", since(afterHeal))
	deleted, err := e.mirrorDeletes(began, healedAt)
	if err != nil {
		return row, err
	}

	// East's API server dies and comes back; its gateway's watches must
	// resume (a relist), and changes made after it carry to west.
	outage := time.Now()
	e.East.API.StopAPIServer(true)
	if err := e.East.API.StartAPIServer(ctx); err != nil {
		return row, err
	}
	back := time.Now()
	if err := e.churnFor(ctx, ch, time.Second); err != nil {
		return row, err
	}
	afterRestart, err := e.converge(ctx)
	if err != nil {
		return row, fmt.Errorf("after east's API server restart: %w", err)
	}
	afterRestart += time.Second // the churn second counts: it began at the restart
	deletedRestart, err := e.mirrorDeletes(outage, back)
	if err != nil {
		return row, err
	}
	// East's controller may have lost its lease while its API server was
	// gone, and exited; its pod would restart it.
	if e.East.Controller.Exited() {
		row.detail("east's controller exited while its API server was down (lease lost) and was restarted")
		if err := (daemon{e.East, contract.ControllerName}).start(ctx); err != nil {
			return row, err
		}
	}
	row.Pass = unready > 0 && afterHeal <= R1Limit && afterRestart <= R1Limit && deleted+deletedRestart == 0
	unreadyText := "never"
	if unready > 0 {
		unreadyText = since(unready)
	}
	row.Figure = fmt.Sprintf("east's mirrors not-ready %s into the partition; converged %s after the heal, %s after the restart; %d mirrors deleted",
		unreadyText, since(afterHeal), since(afterRestart), deleted+deletedRestart)
	row.detail("%d export changes in east, most during the partition; the Link's probe: every 1 s, 2 failures", ch.ops)
	row.detail("east's API server back %s after its kill", since(back.Sub(outage)))
	return row, nil
}

// waitEastUnready returns how long after the call every mirror of east in
// west had no ready endpoint, or 0 if that did not happen within limit.
func (e *Env) waitEastUnready(ctx context.Context, limit time.Duration) time.Duration {
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		mirrors, _, err := held(ctx, e.West)
		if err != nil {
			return false, nil //nolint:nilerr // poll again
		}
		for _, n := range Services {
			if m, ok := mirrors[contract.MirrorName(n, "east")]; !ok || m.ready {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return 0
	}
	return time.Since(start)
}

// mirrorDeletes counts the deletes of Services and EndpointSlices in the
// workload namespace that west's API server took from Ferry in [from, to).
func (e *Env) mirrorDeletes(from, to time.Time) (int, error) {
	evs, err := e.West.API.AuditedWrites(func(ev testenv.AuditEvent) bool {
		return ferryAgent(ev.UserAgent) && ev.Verb == "delete" && ev.ObjectRef.Namespace == Namespace &&
			!ev.Received.Before(from) && ev.Received.Before(to)
	})
	for _, ev := range evs {
		e.Logf("R1: deleted while east was unreachable: %s", ev)
	}
	return len(evs), err
}
