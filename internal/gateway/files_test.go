package gateway

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
