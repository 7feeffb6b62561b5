package chaos

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// R3Limit is the pass criterion: a Link deleted while its controller was
// down is cleaned up this soon after the controller restarts.
const R3Limit = 10 * time.Second

// R3 deletes west's Link to east while west's controller is down (kill -9),
// restarts the controller, and times until every object the Link owned
// and the Link itself are gone. Then it stops the controller gracefully,
// checks that it released its lease, and times the next start's takeover.
// It links west to east again before it returns.
func (e *Env) R3(ctx context.Context) (row Row, err error) {
	row = Row{ID: "R3", Scenario: "Link deleted while the importing controller is down (kill -9), then the controller restarted",
		Criterion: fmt.Sprintf("every object the Link owns gone ≤ %s after the restart; a graceful stop releases the lease", R3Limit)}
	w := e.West
	before, err := owned(ctx, w, "east")
	if err != nil {
		return row, err
	}
	if before == 0 {
		return row, fmt.Errorf("west holds no object of link east before the scenario")
	}
	w.Controller.Kill()
	e.Logf("R3: west's controller killed (SIGKILL); deleting Link east, which owns %d objects", before)
	link := &ferryv1.Link{}
	link.Namespace, link.Name = contract.SystemNamespace, "east"
	if err := w.API.Client.Delete(ctx, link); err != nil {
		return row, fmt.Errorf("delete link: %w", err)
	}
	restarted := time.Now()
	if err := w.StartController(); err != nil {
		return row, err
	}
	var left int
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if left, err = owned(ctx, w, "east"); err != nil || left > 0 {
			return false, nil //nolint:nilerr // poll again
		}
		err := w.API.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: "east"}, &ferryv1.Link{})
		return apierrors.IsNotFound(err), nil
	})
	took := time.Since(restarted)
	if err != nil {
		return row, fmt.Errorf("link east's objects not gone %s after the restart (%d left): %w\n%s", since(took), left, err, w.Controller.Tail(20))
	}
	e.Logf("R3: %d objects and the Link gone %s after the restart", before, since(took))
	row.Figure = fmt.Sprintf("%d objects and the Link gone %s after the restart", before, since(took))
	row.Pass = took <= R3Limit
	row.detail("kill -9, delete, restart: cleanup %s after the restart (limit %s)", since(took), R3Limit)

	// A graceful stop hands the lease back; the next start leads at once.
	if err := ready(ctx, w, w.Controller, contract.ControllerAdminPort); err != nil {
		return row, err
	}
	w.Controller.Stop(30 * time.Second)
	holder, err := leaseHolder(ctx, w)
	if err != nil {
		return row, err
	}
	released := holder == ""
	row.Pass = row.Pass && released
	row.detail("SIGTERM: lease holder afterwards %q (released: %t)", holder, released)
	started := time.Now()
	if err := w.StartController(); err != nil {
		return row, err
	}
	if _, err := waitLeader(ctx, w, sandbox.PodName(contract.ControllerName), 60*time.Second); err != nil {
		return row, err
	}
	row.detail("restart after the graceful stop: leading %s after the start", since(time.Since(started)))
	if err := ready(ctx, w, w.Controller, contract.ControllerAdminPort); err != nil {
		return row, err
	}
	return row, e.link(ctx, "east")
}
