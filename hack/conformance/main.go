// Command conformance is `make conformance`: the upstream MCS API
// conformance suite against Ferry on two sandbox clusters linked both ways.
// See internal/tooling/conformance and docs/mcs-conformance.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"ferry.dev/ferry/internal/tooling/conformance"
)

func main() {
	dir := flag.String("out", "conformance-report", "directory for the suite's log and reports (report.html, report.yaml, junit.xml)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "conformance: the sandbox's network namespaces need root: run `sudo make conformance`")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "\nmake conformance failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string) error {
	say := func(format string, a ...any) { fmt.Printf("==> "+format+"\n", a...) }
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	say("building the suite (third_party/mcs-api-conformance)")
	suite, err := conformance.EnsureSuite()
	if err != nil {
		return err
	}
	say("starting east and west, linked both ways")
	sb, kubeconfig, err := conformance.Start(ctx, func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) })
	if err != nil {
		return err
	}
	defer sb.Stop()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "suite.log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer log.Close()
	say("running the suite (label filter %q, skipping %q: they exec into pods); its log: %s", conformance.LabelFilter, conformance.Skip, logPath)
	start := time.Now()
	rep, err := conformance.RunSuite(ctx, suite, kubeconfig, dir, log)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tSECONDS\tSPEC")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\n", r.State, r.Seconds, r.Name)
	}
	tw.Flush()
	say("%d passed, %d failed, %d not run, in %s; reports in %s", rep.Count("passed"), rep.Count("failed"),
		len(rep.Results)-rep.Count("passed")-rep.Count("failed"), time.Since(start).Round(time.Second), dir)
	if n := rep.Count("failed"); n > 0 {
		for _, r := range rep.Results {
			if r.State == "failed" {
				fmt.Printf("\nFAILED: %s\n%s\n", r.Name, r.Failure)
			}
		}
		return fmt.Errorf("%d specs failed (log: %s)", n, logPath)
	}
	return nil
}
