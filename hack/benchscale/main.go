// Command benchscale measures Ferry's control plane at scale with the real
// ferry-controller and ferry-gateway binaries, in a two-cluster sandbox
// (internal/tooling/scalebench does the work; it needs root for network
// namespaces).
//
//	go run ./hack/benchscale -n 1000          # table on stdout, progress on stderr
//	go run ./hack/benchscale -n 9500 -stop-exporter-controller -o json # large N, as JSON (docs/benchmarks.md: why not 10k here)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/internal/tooling/scalebench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func run() error {
	d := scalebench.DefaultConfig()
	cfg := d
	out := flag.String("o", "table", "output: table (Markdown) or json")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	flag.IntVar(&cfg.Exports, "n", d.Exports, "exports (Service + EndpointSlice + ServiceExport each) on the exporting cluster")
	flag.IntVar(&cfg.Ports, "ports", d.Ports, "TCP ports per exported Service (each takes an egress port on the importer)")
	flag.IntVar(&cfg.Importers, "importers", d.Importers, "feed clients, each a distinct cluster identity, for the fan-out figures")
	flag.IntVar(&cfg.Changes, "changes", d.Changes, "changes timed in each latency measurement")
	flag.DurationVar(&cfg.Idle, "idle", d.Idle, "window over which the importer's idle API writes are counted")
	flag.IntVar(&cfg.Concurrency, "concurrency", d.Concurrency, "writes in flight for the exports and the API floor (the controller's is 16)")
	flag.StringVar(&cfg.EgressPorts, "egress-ports", "", "egress port range to install, FIRST-LAST (default: the install's, widened when N×ports do not fit)")
	flag.DurationVar(&cfg.Timeout, "timeout", d.Timeout, "bound on the whole run")
	flag.BoolVar(&cfg.StopExporterController, "stop-exporter-controller", false, "stop the exporting cluster's controller once the sandbox is up, so that its clusterset objects for the N local exports do not share the machine with the import (for large N)")
	flag.StringVar(&cfg.Profiles, "profiles", "", "directory to save the daemons' heap profiles (after the import; the exporting gateway's also with every fan-out subscriber connected) and CPU profiles (over the changes) in; empty saves none")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *out != "table" && *out != "json" {
		return fmt.Errorf("-o %q: want table or json", *out)
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	// The harness's controller-runtime clients log nothing worth reading;
	// without a logger they print a stack trace to say so.
	ctrllog.SetLogger(logr.Discard())
	// Ctrl-C stops the run through its context, so the sandbox's processes
	// and namespaces are removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := scalebench.Run(ctx, cfg)
	if rep != nil {
		// A run cut short still prints what it measured (the rest reads
		// zero); the error below says where it stopped.
		write := rep.WriteTable
		if *out == "json" {
			write = rep.WriteJSON
		}
		if e := write(os.Stdout); e != nil && err == nil {
			err = e
		}
	}
	return err
}
