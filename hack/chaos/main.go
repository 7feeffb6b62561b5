// Command chaos runs Ferry's reliability scenarios at full length on a
// three-cluster sandbox and prints one row per scenario, as
// docs/reliability.md lists them (internal/tooling/chaos does the work; it
// needs root for network namespaces).
//
//	go run ./hack/chaos               # every scenario; table on stdout, progress on stderr
//	go run ./hack/chaos -only R3,R5   # some of them
//	go run ./hack/chaos -o json
//	go run ./hack/chaos -soak 30m     # the soak alone (make soak DURATION=30m)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/internal/tooling/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run() error {
	o := chaos.Full
	out := flag.String("o", "table", "output: table (Markdown) or json")
	only := flag.String("only", "", "comma-separated scenario ids to run (default: all)")
	flag.DurationVar(&o.FreezeFor, "freeze-for", o.FreezeFor, "how long R5 keeps the leader frozen")
	flag.IntVar(&o.Freezes, "freezes", o.Freezes, "how many times R5 freezes the leader")
	flag.IntVar(&o.KillCycles, "kill-cycles", o.KillCycles, "how many processes R4 kills")
	flag.Uint64Var(&o.Seed, "seed", 0, "the random seed of R1's and R4's churn and R4's kills (0: from the clock)")
	flag.DurationVar(&o.PartitionFor, "partition-for", o.PartitionFor, "how long R1 keeps west and east apart")
	flag.IntVar(&o.FloodConns, "flood-conns", o.FloodConns, "how many slow connections B1 opens")
	soak := flag.Duration("soak", 0, "run only the soak, for this long (churn and traffic; RSS and goroutine trends)")
	rate := flag.Int("rate", 50, "the soak's requests a second")
	timeout := flag.Duration("timeout", 45*time.Minute, "bound on the whole run (the soak adds its duration)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("-o %q: want table or json", *out)
	}
	var run []chaos.Scenario
	if *soak > 0 {
		d, r := *soak, *rate
		run = append(run, chaos.Scenario{ID: "SOAK", Run: func(ctx context.Context, e *chaos.Env, _ chaos.Options) (chaos.Row, error) {
			return e.Soak(ctx, d, r)
		}})
		*only = "SOAK"
		*timeout += d
	}
	for _, s := range chaos.Scenarios {
		if *only == "" || slices.Contains(strings.Split(*only, ","), s.ID) {
			run = append(run, s)
		}
	}
	if *rate < 1 {
		return fmt.Errorf("-rate %d: want at least 1", *rate)
	}
	if len(run) == 0 {
		return fmt.Errorf("-only %q names no scenario", *only)
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "chaos: "+f+"\n", a...) }
	e, err := chaos.Start(ctx, logf)
	if err != nil {
		return err
	}
	defer e.Stop()
	var rows []chaos.Row
	failed := 0
	for _, s := range run {
		logf("%s: running", s.ID)
		row, err := s.Run(ctx, e, o)
		if err != nil {
			return fmt.Errorf("%s: %w", s.ID, err)
		}
		if !row.Pass {
			failed++
		}
		logf("%s: %s (pass: %t)", s.ID, row.Figure, row.Pass)
		rows = append(rows, row)
	}
	if *out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		fmt.Printf("%s\n(%s)\n", chaos.Table(rows), time.Now().UTC().Format("2006-01-02"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d scenarios missed their criterion", failed, len(rows))
	}
	return nil
}
