package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// TestOutOfFilesIsExplained runs the process out of file descriptors for a
// moment (its soft limit lowered to what it holds plus a few) and checks
// that a listen's failure then names the limit and the fix, while any
// other failure is left as it is.
func TestOutOfFilesIsExplained(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := orig
	low.Cur = uint64(len(fds) + 4)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) }
	defer restore()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var listenErr error
	for range 16 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			listenErr = err
			break
		}
		lns = append(lns, ln)
	}
	msg := outOfFiles(listenErr, len(lns))
	restore()
	if !errors.Is(listenErr, syscall.EMFILE) {
		t.Fatalf("listening past a limit of %d files: %v, want EMFILE", low.Cur, listenErr)
	}
	for _, want := range []string{"holds " + strconv.Itoa(len(lns)) + " egress listeners", "open-file limit is " + strconv.FormatUint(low.Cur, 10), "nofile"} {
		if !strings.Contains(msg, want) {
			t.Errorf("explanation %q lacks %q", msg, want)
		}
	}
	if got := outOfFiles(syscall.EADDRINUSE, 1); got != "" {
		t.Errorf("a port in use explained as %q", got)
	}
}

// TestFileReserveRefusesEgressPortsPastIt sets the reserve to all but two
// descriptors of the open-file limit: two egress ports listen, the others
// are refused each with ErrFileReserve and the fix, and the process can
// still open a socket (the admin port's part of the reserve).
func TestFileReserveRefusesEgressPortsPastIt(t *testing.T) {
	limit, ok := openFileLimit()
	if !ok {
		t.Fatal("the open-file limit is unknown (infinite): the reserve cannot be tested here")
	}
	lim := testLimits()
	lim.FileReserve = int(limit) - 2
	m := identitytest.NewMesh(t, "", "west")
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	eg, err := NewEgress(t.Context(), EgressOptions{TLS: m.Cluster(t, "west").Gateway, Limits: lim, Callers: AnyCaller,
		ListenHost: "127.0.0.1", Metrics: metrics, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eg.Shutdown(context.Background()) })
	var routes []Route
	for range 4 {
		routes = append(routes, Route{Port: freePort(t), Namespace: "apps",
			Destinations: []Destination{{Cluster: "east", Target: tunnel.Target{Namespace: "apps", Service: "web", Port: 80}}}})
	}
	err = eg.SetRoutes(routes)
	if !errors.Is(err, ErrFileReserve) {
		t.Fatalf("SetRoutes past the reserve: %v, want ErrFileReserve", err)
	}
	for _, want := range []string{"holds 2 egress listeners", "FileReserve", "nofile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	// A port the egress listens on cannot be bound again.
	listening := 0
	for _, r := range routes {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)))
		if err != nil {
			listening++
			continue
		}
		ln.Close()
	}
	if listening != 2 {
		t.Errorf("%d egress ports listen, want the 2 the reserve leaves", listening)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("a listener outside egress, within the reserve: %v", err)
	}
	ln.Close()
}

func TestJoinCappedCountsTheRest(t *testing.T) {
	var errs []error
	for i := range 20 {
		errs = append(errs, fmt.Errorf("port %d: %w", i, ErrFileReserve))
	}
	err := joinCapped(errs)
	if !errors.Is(err, ErrFileReserve) {
		t.Errorf("capped errors lost their cause: %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxRouteErrors+1 || lines[maxRouteErrors] != "gateway: and 12 more egress port errors" {
		t.Errorf("capped errors:\n%v", err)
	}
	if got := joinCapped(errs[:3]); strings.Count(got.Error(), "\n") != 2 {
		t.Errorf("three errors joined as %q", got)
	}
}
