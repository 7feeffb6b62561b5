// Command bench measures Ferry's gateway pair against a direct connection
// and against HAProxy doing the same mTLS hop, in one run, and prints the
// medians and ratios (internal/tooling/benchpeer does the work).
//
//	hack/install-bench-deps.sh   # haproxy, once
//	go run ./hack/bench          # table on stdout, progress on stderr
//	go run ./hack/bench -o json  # the same as JSON
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"ferry.dev/ferry/internal/tooling/benchpeer"
)

func main() {
	// The harness re-executes this binary to run the Ferry pair in its own
	// process; that copy must do nothing else.
	if benchpeer.IsChild() {
		if err := benchpeer.RunChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	d := benchpeer.DefaultConfig()
	var (
		cfg    benchpeer.Config
		mib    = flag.Int64("stream-mib", d.StreamBytes>>20, "MiB sent each way on the one stream connection")
		wanMiB = flag.Int64("wan-mib", d.WANBytes>>20, "MiB sent each way through each WAN path (on one stream, then spread over -wan-streams)")
		out    = flag.String("o", "table", "output: table (Markdown) or json")
		quiet  = flag.Bool("q", false, "no progress lines on stderr")
		inProc = flag.Bool("ferry-in-process", false, "run the Ferry pair inside the harness (no proxy CPU figure for Ferry)")
	)
	flag.IntVar(&cfg.Conns, "conns", d.Conns, "sequential new connections, one small echo each")
	flag.IntVar(&cfg.Parallel, "parallel", d.Parallel, "parallel persistent connections")
	flag.IntVar(&cfg.Requests, "requests", d.Requests, "request/responses shared by the parallel connections")
	flag.IntVar(&cfg.MsgSize, "size", d.MsgSize, "request and response size in bytes")
	flag.IntVar(&cfg.IdleConns, "idle", d.IdleConns, "idle connections held open at once through each proxy (RSS per connection)")
	flag.IntVar(&cfg.WANStreams, "wan-streams", d.WANStreams, "streams at once in the WAN workload's parallel run")
	flag.IntVar(&cfg.Reps, "reps", d.Reps, "repetitions; the report is the median")
	flag.DurationVar(&cfg.Timeout, "timeout", d.Timeout, "bound on the whole run, child processes included")
	flag.StringVar(&cfg.HAProxy, "haproxy", "", "haproxy binary (default: haproxy on PATH)")
	flag.StringVar(&cfg.FerryCPUProfile, "ferry-cpuprofile", "", "write a CPU profile of the Ferry child's whole run to this file")
	flag.BoolVar(&cfg.SkipHAProxy, "skip-haproxy", os.Getenv("FERRY_SKIP_PEER") == "1", "leave the HAProxy path out (default true when FERRY_SKIP_PEER=1)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("-o %q: want table or json", *out)
	}
	cfg.StreamBytes = *mib << 20
	cfg.WANBytes = *wanMiB << 20
	cfg.FerryInProcess = *inProc
	if !*quiet {
		cfg.Progress = os.Stderr
	}

	// Ctrl-C stops the run through its context, so children are stopped
	// and the temporary PEM directory is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := benchpeer.Run(ctx, cfg)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if *out == "json" {
		return rep.WriteJSON(w)
	}
	return rep.WriteTable(w)
}
