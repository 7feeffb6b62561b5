package chaos

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
)

// R6Limit is the pass criterion: a controller whose remote is down when it
// starts is ready this soon.
const R6Limit = 30 * time.Second

// R6 kills east's gateway, so west cannot reach east at all, and restarts
// west's controller. It times the controller's readiness, then checks that
// the rest of west's work goes on: north's changes reach west's mirror,
// and a new local ServiceExport gets its status. It restarts east's
// gateway and waits for east's mirrors before it returns.
func (e *Env) R6(ctx context.Context) (row Row, err error) {
	row = Row{ID: "R6", Scenario: "the remote (east) is down when west's controller starts",
		Criterion: fmt.Sprintf("ready ≤ %s; local exports and other Links unaffected", R6Limit)}
	w := e.West
	e.East.Gateway.Kill()
	defer func() {
		if serr := e.East.StartGateway(); serr != nil {
			err = serr
			return
		}
		for _, n := range Services {
			if werr := e.waitReachable(ctx, contract.MirrorName(n, "east"), 90*time.Second); werr != nil && err == nil {
				err = werr
			}
		}
	}()
	w.Controller.Kill()
	started := time.Now()
	if err := w.StartController(); err != nil {
		return row, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*R6Limit)
	err = w.WaitProcessReady(rctx, w.Controller, contract.ControllerAdminPort)
	cancel()
	readyAfter := time.Since(started)
	if err != nil {
		return row, fmt.Errorf("west's controller not ready with east down: %w\n%s", err, w.Controller.Tail(20))
	}

	// Another Link: north's echo going unready and back reaches west.
	t := time.Now()
	if err := e.flipAndSee(ctx, e.NorthEcho, contract.MirrorName("echo", "north")); err != nil {
		return row, err
	}
	northTook := time.Since(t)

	// A local export: a new ServiceExport in west is marked Valid.
	t = time.Now()
	name := "local-r6"
	if _, err := w.Echo(ctx, Namespace, name, 1); err != nil {
		return row, err
	}
	if err := w.Export(ctx, Namespace, name); err != nil {
		return row, err
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var se mcsv1beta1.ServiceExport
		if err := w.API.Client.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &se); err != nil {
			return false, nil //nolint:nilerr // poll again
		}
		return meta.IsStatusConditionTrue(se.Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid)), nil
	})
	if err != nil {
		return row, fmt.Errorf("west's local ServiceExport %s never turned Valid with east down: %w", name, err)
	}
	localTook := time.Since(t)
	row.Pass = readyAfter <= R6Limit
	row.Figure = fmt.Sprintf("ready %s after the start", since(readyAfter))
	row.detail("north's endpoints unready and back in west's mirror within %s", since(northTook))
	row.detail("a new local ServiceExport Valid within %s", since(localTook))
	return row, nil
}
