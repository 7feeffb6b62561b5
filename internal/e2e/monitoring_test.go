package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"ferry.dev/ferry/internal/monitoring/grafana"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/promexpr"
)

// TestMonitoringMetricsExist: every metric that the alerts and the Grafana
// dashboard name (internal/monitoring) is in the /metrics of a running
// controller or gateway, after the traffic of a linked sandbox: west
// imports from east and north and sends a request through east's gateway.
// A name missing from the scraped text is a misspelling, a renamed series,
// or a labelled vector the daemons never fill; a rule on it never fires.
func TestMonitoringMetricsExist(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	exprs, err := grafana.Expressions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := west.Request(ctx, ns, "echo-east", 80, "monitoring"); err != nil {
		t.Fatalf("west pod -> echo-east: %v", err)
	}
	// Series appear with the first probe, pass or feed update; setup has
	// waited for the mirrors, so at most a probe period is left.
	var missing []string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var texts []string
		for _, c := range sb.Clusters {
			for _, scrape := range []func(context.Context) (string, error){c.GatewayMetrics, c.ControllerMetrics} {
				text, err := scrape(ctx)
				if err != nil {
					return false, err
				}
				texts = append(texts, text)
			}
		}
		missing, err = promexpr.Missing(exprs, texts...)
		return err == nil && len(missing) == 0, err
	})
	if len(missing) > 0 {
		t.Fatalf("%d metrics used by the alerts or the dashboard are in no daemon's /metrics:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d expressions of the alerts and the dashboard: every metric they use is exported", len(exprs))
}
