package scalebench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tooling/netns"
)

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunTiny runs the whole harness at a tiny size and checks that every
// figure was measured and is plausible: the harness's own wiring, not
// Ferry's performance (hack/benchscale is for that).
func TestRunTiny(t *testing.T) {
	netns.RequireRoot(t)
	const n, importers, changes = 20, 3, 5
	rep, err := Run(t.Context(), Config{
		Exports: n, Importers: importers, Changes: changes, Idle: 2 * time.Second,
		Timeout: 3 * time.Minute, Progress: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	positive := map[string]time.Duration{
		"import": rep.Import, "floor": rep.Floor, "feed ready": rep.FeedReady,
		"change p50": rep.ChangeLatency.P50, "change max": rep.ChangeLatency.Max,
		"fan-out snapshot": rep.FanoutSnapshot, "fan-out all p99": rep.FanoutAll.P99,
		"fan-out mirror p50": rep.FanoutMirrorLatency.P50,
	}
	for name, d := range positive {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %s, want within (0, 2m]", name, d)
		}
	}
	if rep.ChangeLatency.N != changes || rep.FanoutAll.N != changes || rep.FanoutEach.N != changes*importers {
		t.Errorf("samples: change %d, fan-out all %d, each %d; want %d, %d, %d",
			rep.ChangeLatency.N, rep.FanoutAll.N, rep.FanoutEach.N, changes, changes, changes*importers)
	}
	if p := rep.ChangeLatency; p.P50 > p.P99 || p.P99 > p.Max {
		t.Errorf("change latency not ordered: %s", p)
	}
	for name, m := range map[string]Memory{
		"controller": rep.Controller, "controller after idle": rep.ControllerAfterIdle,
		"importing gateway": rep.ImporterGateway, "exporting gateway": rep.Gateway, "fan-out gateway": rep.FanoutGateway,
	} {
		// A Go daemon under 1 MB or over 2 GB is a misread, not a figure.
		if m.RSS < 1<<20 || m.RSS > 2<<30 {
			t.Errorf("%s RSS %d bytes", name, m.RSS)
		}
		if m.Heap.InUse <= 0 {
			t.Errorf("%s heap in use %v: metric not scraped", name, m.Heap.InUse)
		}
	}
	// Each mirror is at least a Service and an EndpointSlice.
	if rep.ImportWrites < 2*n {
		t.Errorf("controller writes during the import %v, want ≥ %d", rep.ImportWrites, 2*n)
	}
	// The controller renews its lease every 2s, so any window sees some.
	if rep.IdleLeaseWrites <= 0 || rep.IdleControllerClientWrites <= 0 {
		t.Errorf("idle writes: lease %v, controller %v; want both > 0", rep.IdleLeaseWrites, rep.IdleControllerClientWrites)
	}
	// CPU is read in the kernel's 10 ms ticks, and a few changes at N=20
	// can cost less than one: zero is a true reading, a negative one not.
	if rep.FanoutCPUPerChange < 0 || rep.FanoutWireBytesPerChange <= 0 || rep.FanoutFeedBytesPerChange <= 0 {
		t.Errorf("fan-out: CPU %v s, wire %v B, feed %v B per change; want CPU ≥ 0, the others > 0",
			rep.FanoutCPUPerChange, rep.FanoutWireBytesPerChange, rep.FanoutFeedBytesPerChange)
	}
	// TLS and HTTP/2 framing wrap every feed message.
	if rep.FanoutWireBytesPerChange < rep.FanoutFeedBytesPerChange {
		t.Errorf("wire bytes %v below the feed's own %v", rep.FanoutWireBytesPerChange, rep.FanoutFeedBytesPerChange)
	}

	var table, js bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Count(table.String(), "\n"), len(rep.Rows())+2; got != want {
		t.Errorf("table has %d lines, want %d", got, want)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct{ Rows []Row }
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != len(rep.Rows()) {
		t.Errorf("JSON: %v, %d rows", err, len(back.Rows))
	}
	t.Logf("\n%s", table.String())
}
