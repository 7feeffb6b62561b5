package benchpeer

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness owns: a haproxy or the Ferry pair.
type proc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr *tail
	done   chan struct{}
	err    error // Wait's result, set before done closes
}

// procSpec says how to start a child.
type procSpec struct {
	name     string
	path     string
	args     []string
	env      []string // appended to the harness's environment
	stdin    io.Reader
	stdout   io.Writer
	lifetime time.Duration
}

// startProc starts a child that cannot outlive the harness or lifetime:
//   - Pdeathsig kills it when the harness dies, even by SIGKILL. (Linux
//     sends it when the forking OS thread exits; the Go runtime only retires
//     threads of goroutines that exit while locked with LockOSThread, which
//     this package never does.)
//   - exec.CommandContext kills it when lifetime passes, so a stuck run
//     ends on its own.
func startProc(ctx context.Context, s procSpec) (*proc, error) {
	ctx, cancel := context.WithTimeout(ctx, s.lifetime)
	cmd := exec.CommandContext(ctx, s.path, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = s.stdin
	cmd.Stdout = s.stdout
	p := &proc{name: s.name, cmd: cmd, cancel: cancel, stderr: &tail{max: 4 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	// Output copying must not hold Wait forever if a grandchild kept the
	// pipes open.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("benchpeer: start %s: %w", s.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the child has ended, with its stderr tail.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("benchpeer: %s exited (%w): %s", p.name, p.err, p.stderr.String())
	default:
		return false, nil
	}
}

// stop asks the child to end (SIGTERM), then kills it after a grace period.
func (p *proc) stop() {
	defer p.cancel()
	if ok, _ := p.exited(); ok {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for userspace on every architecture Go supports.
const userHZ = 100

// cpu is the user+system time the child has used so far, all its threads
// together. getrusage(RUSAGE_CHILDREN) would only count children that have
// been waited for, so it cannot measure a running proxy per workload.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("benchpeer: cpu of %s: %w", p.name, err)
	}
	// The command name (field 2) may hold spaces; fields after it are
	// fixed. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("benchpeer: cpu of %s: malformed stat", p.name)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("benchpeer: cpu of %s: short stat", p.name)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("benchpeer: cpu of %s: %w", p.name, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// tail keeps the last max bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
