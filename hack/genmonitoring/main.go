// Command genmonitoring writes what internal/monitoring defines into the
// repository: the Grafana dashboard (deploy/grafana/ferry.json) and the alert
// table of docs/operations.md. `go test ./internal/monitoring` fails when
// either is stale. Run it from the repository root:
//
//	go run ./hack/genmonitoring
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"ferry.dev/ferry/internal/monitoring"
	"ferry.dev/ferry/internal/monitoring/grafana"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genmonitoring:", err)
		os.Exit(1)
	}
}

func run() error {
	dash, err := grafana.DashboardJSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(grafana.DashboardPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(grafana.DashboardPath, dash, 0o644); err != nil {
		return err
	}
	doc, err := os.ReadFile(monitoring.OperationsDoc)
	if err != nil {
		return err
	}
	if doc, err = monitoring.SpliceAlertTable(doc); err != nil {
		return err
	}
	if err := os.WriteFile(monitoring.OperationsDoc, doc, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and the alert table of %s (%d alerts)\n", grafana.DashboardPath, monitoring.OperationsDoc, len(monitoring.Alerts()))
	return nil
}
