package scalebench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/importer"
)

// Config sizes a run. Zero fields take DefaultConfig's values.
type Config struct {
	// Exports is N: exported Services on the exporter.
	Exports int
	// Ports is the TCP ports per exported Service: each takes one egress
	// port on the importer.
	Ports int
	// Importers is M, the feed clients of the fan-out measurement.
	Importers int
	// Changes is K, the changes timed in each change measurement.
	Changes int
	// Idle is the window the importer's idle API writes are counted over.
	Idle time.Duration
	// Concurrency is the harness's writes in flight, for the exports and
	// for the API floor: the controller's own (importer.DefaultWriteConcurrency),
	// so the floor is what the controller's write path could at best do.
	Concurrency int
	// EgressPorts is the install's egress range. Empty takes the install's
	// default when Exports×Ports fits in it, and a wider range otherwise
	// (Report.EgressPorts says which).
	EgressPorts string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// StopExporterController stops the exporting cluster's controller once
	// the sandbox is up (it has issued the gateway's certificate by then).
	// The harness needs only the exporter's gateway; the exporter's
	// controller writes a clusterset Service, slice and ServiceImport per
	// local export, three more objects per export on the same two cores
	// and an API server that, at 10k, already holds 30k of the harness's.
	StopExporterController bool
	// Profiles, when set, is a directory where the run saves the daemons'
	// heap profiles after the import (and the exporting gateway's with
	// every fan-out subscriber connected) and their CPU profiles over the
	// change latency measurement (go tool pprof reads them).
	Profiles string
	// Progress, if set, gets one line per step.
	Progress io.Writer
}

// DefaultConfig is `go run ./hack/benchscale` with no flags.
func DefaultConfig() Config {
	return Config{
		Exports: 1000, Ports: 1, Importers: 50, Changes: 100, Idle: 60 * time.Second,
		Concurrency: importer.DefaultWriteConcurrency, Timeout: 60 * time.Minute,
	}
}

func (c *Config) defaults() error {
	d := DefaultConfig()
	c.Exports, c.Ports, c.Importers = cmp.Or(c.Exports, d.Exports), cmp.Or(c.Ports, d.Ports), cmp.Or(c.Importers, d.Importers)
	c.Changes, c.Concurrency = cmp.Or(c.Changes, d.Changes), cmp.Or(c.Concurrency, d.Concurrency)
	c.Idle, c.Timeout = cmp.Or(c.Idle, d.Idle), cmp.Or(c.Timeout, d.Timeout)
	switch {
	case c.Exports < 1 || c.Exports > 100000:
		return fmt.Errorf("scalebench: exports %d: want 1..100000", c.Exports)
	case c.Ports < 1 || c.Ports > 8:
		return fmt.Errorf("scalebench: ports %d: want 1..8", c.Ports)
	case c.Importers < 1 || c.Importers > 200:
		// The feed server admits 256 subscribers by default.
		return fmt.Errorf("scalebench: importers %d: want 1..200", c.Importers)
	case c.Changes < 1 || c.Changes > 10000:
		return fmt.Errorf("scalebench: changes %d: want 1..10000", c.Changes)
	case c.Idle < time.Second:
		return errors.New("scalebench: idle window below 1s")
	}
	need := int64(c.Exports) * int64(c.Ports)
	r := contract.DefaultEgressRange()
	if c.EgressPorts != "" {
		var err error
		if r, err = contract.ParseRange(c.EgressPorts); err != nil {
			return fmt.Errorf("scalebench: %w", err)
		}
	}
	if have := int64(r.Max - r.Min + 1); need > have {
		return fmt.Errorf("scalebench: %d exports × %d ports need %d egress ports; range %s holds %d (set -egress-ports, clear of the clusterset range %s)",
			c.Exports, c.Ports, need, r, have, contract.DefaultClustersetRange())
	}
	return nil
}
