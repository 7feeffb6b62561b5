package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// Leader election timing the criteria are stated against: the controller's
// lease duration and retry period (internal/controllerd), and the slack the
// issue allows R5.
const (
	LeaseDuration = 15 * time.Second
	RetryPeriod   = time.Second
	R5Slack       = 2 * time.Second
)

// TakeoverBound is the latest a standby can take over after the leader
// stalls, by client-go's algorithm: it polls the lease every RetryPeriod
// with up to 120 % jitter, and counts LeaseDuration from when it first saw
// the last renewal, so up to two polls come on top of the lease.
const TakeoverBound = LeaseDuration + 2*RetryPeriod*22/10

// replicaB is the second controller replica's pod, and its admin port.
const (
	replicaB     = "ferry-controller-sandbox-b"
	replicaBPort = 9991
)

// R5 runs two controller replicas in west and, o.Freezes times, freezes
// the leader (SIGSTOP) for o.FreezeFor while east's endpoints churn, then
// thaws it (SIGCONT). Each time it measures the other replica's takeover,
// checks that the new leader writes (a change reaches west's mirror), and
// counts in west's audit log every write the thawed old leader made after
// the freeze, except to its Lease. The thawed process exits (it lost the
// lease) and is started again, as its pod would restart it.
func (e *Env) R5(ctx context.Context, o Options) (row Row, err error) {
	row = Row{ID: "R5", Scenario: fmt.Sprintf("two controller replicas; the leader frozen (SIGSTOP) for %s while endpoints churn, then thawed; %d times", o.FreezeFor, o.Freezes),
		Criterion: fmt.Sprintf("the other leads ≤ %s after the freeze; the thawed old leader writes nothing", o.TakeoverLimit)}
	w := e.West
	first := sandbox.PodName(contract.ControllerName)
	procs := map[string]*testenv.Process{first: w.Controller}
	if procs[replicaB], err = w.StartControllerReplica(replicaB, replicaBPort); err != nil {
		return row, err
	}
	defer func() {
		procs[replicaB].Stop(30 * time.Second)
		if err == nil {
			_, err = waitLeader(ctx, w, first, 60*time.Second)
		}
	}()
	if err := ready(ctx, w, procs[replicaB], replicaBPort); err != nil {
		return row, err
	}
	var takeovers []time.Duration
	writes := 0
	for i := range o.Freezes {
		took, n, err := e.freeze(ctx, o.FreezeFor, procs)
		if err != nil {
			return row, fmt.Errorf("freeze %d: %w", i+1, err)
		}
		takeovers = append(takeovers, took)
		writes += n
		row.detail("freeze %d: takeover %s after the freeze, %d writes by the thawed leader", i+1, since(took), n)
	}
	slices.Sort(takeovers)
	p50, worst := takeovers[len(takeovers)/2], takeovers[len(takeovers)-1]
	row.Pass = worst <= o.TakeoverLimit && writes == 0
	row.Figure = fmt.Sprintf("takeover p50 %s, max %s (n=%d); %d writes by thawed leaders", since(p50), since(worst), len(takeovers), writes)
	return row, nil
}

// freeze stops the leader among procs for d, and returns how long the
// other took to lead and how many writes the old leader made from the
// freeze on. It leaves both replicas running, the new leader leading.
func (e *Env) freeze(ctx context.Context, d time.Duration, procs map[string]*testenv.Process) (time.Duration, int, error) {
	w := e.West
	leaderName, err := leaseHolder(ctx, w)
	if err != nil {
		return 0, 0, err
	}
	leader, ok := procs[leaderName]
	if !ok {
		return 0, 0, fmt.Errorf("lease held by %q, not one of the two replicas", leaderName)
	}
	var other string
	for name := range procs {
		if name != leaderName {
			other = name
		}
	}

	churnCtx, stopChurn := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.churn(churnCtx, "echo-b") }()
	defer func() { stopChurn(); wg.Wait() }()

	frozen := time.Now()
	if err := leader.Signal(syscall.SIGSTOP); err != nil {
		return 0, 0, err
	}
	thawed := false
	defer func() {
		if !thawed { // an early return must not leave the leader stopped
			_ = leader.Signal(syscall.SIGCONT)
		}
	}()
	e.Logf("R5: leader %s frozen (SIGSTOP) for %s", leaderName, d)
	took, werr := waitLeader(ctx, w, other, d)
	if werr == nil {
		// The new leader writes: a whole Service going unready in east
		// turns its mirror's endpoints unready in west, and back.
		werr = e.flipAndSee(ctx, e.EastEcho["echo-c"], contract.MirrorName("echo-c", "east"))
	}
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(time.Until(frozen.Add(d))):
	}
	thawed = true
	if err := leader.Signal(syscall.SIGCONT); err != nil {
		return 0, 0, err
	}
	stopChurn()
	wg.Wait()
	if werr != nil {
		return 0, 0, fmt.Errorf("takeover: %w\n%s", werr, procs[other].Tail(20))
	}
	// The thawed process finds the lease lost and exits; what it had in
	// hand it tries on the way, and the audit log would show it.
	select {
	case <-leader.Done():
	case <-time.After(LeaseDuration):
		return 0, 0, fmt.Errorf("the thawed leader %s did not exit %s after it lost the lease", leaderName, LeaseDuration)
	}
	writes, err := writesBy(w, leaderName, frozen)
	if err != nil {
		return 0, 0, err
	}
	// The same log must show the new leader's writes, or a count of zero
	// for the old one would prove nothing.
	theirs, err := writesBy(w, other, frozen)
	if err != nil {
		return 0, 0, err
	}
	if len(theirs) == 0 {
		return 0, 0, fmt.Errorf("west's audit log shows no write by the new leader %s since the freeze", other)
	}
	for _, ev := range writes {
		e.Logf("R5: write by the thawed leader %s: %s", leaderName, ev)
	}
	// Its pod restarts it, as a standby now.
	if leaderName == sandbox.PodName(contract.ControllerName) {
		err = w.StartController()
		procs[leaderName] = w.Controller
	} else {
		procs[leaderName], err = w.StartControllerReplica(replicaB, replicaBPort)
	}
	if err != nil {
		return 0, 0, err
	}
	port := contract.ControllerAdminPort
	if leaderName == replicaB {
		port = replicaBPort
	}
	return took, len(writes), ready(ctx, w, procs[leaderName], port)
}

// churn flips east's first echo pod of service between ready and not
// every 250 ms until ctx ends, and returns how many flips it made.
func (e *Env) churn(ctx context.Context, service string) int {
	n := 0
	ready := false
	for ; ; n++ {
		select {
		case <-ctx.Done():
			_ = e.EastEcho[service].SetReady(context.Background(), 0, true)
			return n
		case <-time.After(250 * time.Millisecond):
		}
		if err := e.EastEcho[service].SetReady(ctx, 0, ready); err != nil {
			continue
		}
		ready = !ready
	}
}

// flipAndSee turns every pod of wl unready, waits until west's mirror has
// no ready endpoint, then turns them ready and waits for the mirror to be
// ready again: proof that west's controller carries changes.
func (e *Env) flipAndSee(ctx context.Context, wl *sandbox.Workload, mirror string) error {
	for _, ready := range []bool{false, true} {
		for i := range wl.Pods {
			if err := wl.SetReady(ctx, i, ready); err != nil {
				return err
			}
		}
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			r, total, err := mirrorReady(ctx, e.West, mirror)
			return err == nil && total > 0 && (r > 0) == ready, nil
		})
		if err != nil {
			return fmt.Errorf("west's %s never turned ready=%t: %w", mirror, ready, err)
		}
	}
	return nil
}

// mirrorReady counts the ready and all endpoints of a Service in west.
func mirrorReady(ctx context.Context, c *sandbox.Cluster, service string) (ready, total int, _ error) {
	var sl discoveryv1.EndpointSliceList
	if err := c.API.Client.List(ctx, &sl, client.InNamespace(Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return 0, 0, fmt.Errorf("slices of %s: %w", service, err)
	}
	for _, s := range sl.Items {
		for _, ep := range s.Endpoints {
			total++
			if ptr.Deref(ep.Conditions.Ready, true) {
				ready++
			}
		}
	}
	return ready, total, nil
}
