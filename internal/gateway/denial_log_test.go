package gateway

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestDeniedStreamLog: the importing side's log of a refused stream names
// what was asked for (service and port), where (the remote cluster), the
// status, and what a denial can mean, and nothing the exporter keeps from
// callers: not which of the reasons it was, nor whom the export is for.
// It said "tunnel stream rejected: denied: denied".
func TestDeniedStreamLog(t *testing.T) {
	var logs testkit.LockedBuffer
	p := newPair(t, pairOpts{egLog: slog.New(slog.NewTextHandler(&logs, nil))})
	be := newBackend(t, echo)
	p.export("limited", []string{"north"}, be.addr())
	c := dial(t, p.route(t, "limited"))
	if b, _ := readAll(t, c); len(b) != 0 {
		t.Fatalf("a denied stream carried %q", b)
	}
	var line string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "egress stream failed") {
				line = l
			}
		}
		if line != "" {
			break
		}
	}
	if line == "" {
		t.Fatalf("no egress failure logged:\n%s", logs.String())
	}
	t.Log(line)
	for _, want := range []string{
		"tunnel stream to default/limited:80 in cluster east rejected: denied:",
		"not exported to this cluster",
		"remote=east", "export=default/limited", "reason=denied",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q:\n%s", want, line)
		}
	}
	for _, secret := range []string{"denied: denied", ReasonClusterNotAllowed, "north"} {
		if strings.Contains(line, secret) {
			t.Errorf("log line has %q:\n%s", secret, line)
		}
	}
}
