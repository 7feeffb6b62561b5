package benchpeer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The harness re-executes its own binary to run the Ferry pair in a
// separate process; these variables tell the copy what it is.
const (
	childEnv        = "FERRY_BENCHPEER_CHILD"
	childBackendEnv = "FERRY_BENCHPEER_BACKEND"
	childProfileEnv = "FERRY_BENCHPEER_CPUPROFILE"
	childIdleEnv    = "FERRY_BENCHPEER_IDLE"
	childWANEnv     = "FERRY_BENCHPEER_WAN"
	childRoleFerry  = "ferry"
	readyPrefix     = "ready "
)

// IsChild reports whether this process was started by the harness to run
// the Ferry pair. A main (or TestMain) that uses Run must check it first and
// call RunChild instead of doing its normal work.
func IsChild() bool { return os.Getenv(childEnv) == childRoleFerry }

// RunChild runs the Ferry pair towards the backend named in the
// environment, prints "ready <egress address> <cipher>" on stdout, and serves until
// stdin closes (the harness ends or stops it) or SIGTERM arrives.
func RunChild() error {
	backend := os.Getenv(childBackendEnv)
	if backend == "" {
		return fmt.Errorf("benchpeer: child: %s is not set", childBackendEnv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if path := os.Getenv(childProfileEnv); path != "" {
		pf, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("benchpeer: child: profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("benchpeer: child: profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	idle, _ := strconv.Atoi(os.Getenv(childIdleEnv))
	var relays []string
	if v := os.Getenv(childWANEnv); v != "" {
		relays = strings.Split(v, ",")
	}
	f, err := startFerry(ctx, backend, idle, relays)
	if err != nil {
		return err
	}
	defer f.close()
	if _, err := fmt.Fprintf(os.Stdout, "%s%s\n", readyPrefix, strings.Join(append([]string{f.addr, f.cipher, f.ingress}, f.wan...), " ")); err != nil {
		return fmt.Errorf("benchpeer: child: report address: %w", err)
	}
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// ferryChild is the Ferry pair in a child process.
type ferryChild struct {
	*proc
	addr   string
	cipher string
	// ingress is the child's tunnel address, and wan its egress ports
	// through the relays, in their order.
	ingress string
	wan     []string
	stdin   io.Closer
}

// startFerryChild re-executes this binary as a Ferry child and waits for its
// egress address.
// A non-empty profile is where the child writes a CPU profile of its
// whole life (go tool pprof it to see where Ferry's proxy CPU goes).
func startFerryChild(ctx context.Context, backendAddr, profile string, idle int, relays []string, lifetime time.Duration) (*ferryChild, error) {
	if IsChild() {
		// The binary did not dispatch to RunChild; starting another child
		// would recurse.
		return nil, errors.New("benchpeer: the Ferry child binary does not call RunChild when IsChild")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("benchpeer: own executable: %w", err)
	}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("benchpeer: pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, fmt.Errorf("benchpeer: pipe: %w", err)
	}
	p, err := startProc(ctx, procSpec{
		name: "ferry", path: exe, lifetime: lifetime,
		// No arguments: the role travels in the environment, so a test
		// binary's TestMain and a command's main dispatch the same way.
		env:   []string{childEnv + "=" + childRoleFerry, childBackendEnv + "=" + backendAddr, childProfileEnv + "=" + profile, childIdleEnv + "=" + strconv.Itoa(idle), childWANEnv + "=" + strings.Join(relays, ",")},
		stdin: stdinR, stdout: outW,
	})
	// The child holds its own copies of these ends.
	stdinR.Close()
	outW.Close()
	if err != nil {
		stdinW.Close()
		outR.Close()
		return nil, err
	}
	c := &ferryChild{proc: p, stdin: stdinW}
	line := make(chan string, 1)
	go func() {
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		// Keep draining so the child never blocks on a full stdout.
		for sc.Scan() {
		}
	}()
	select {
	case l, ok := <-line:
		if f := strings.Fields(strings.TrimPrefix(l, readyPrefix)); ok && strings.HasPrefix(l, readyPrefix) && len(f) == 3+len(relays) {
			c.addr, c.cipher, c.ingress, c.wan = f[0], f[1], f[2], f[3:]
			return c, nil
		}
		c.stop()
		_, exitErr := p.exited()
		return nil, fmt.Errorf("benchpeer: ferry child did not report ready (got %q): %w", l, exitErr)
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("benchpeer: ferry child not ready after 30s: %s", p.stderr.String())
	}
}

// stop closes the child's stdin (its signal to drain and exit), then falls
// back to proc.stop's SIGTERM and kill.
func (c *ferryChild) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	c.proc.stop()
}
