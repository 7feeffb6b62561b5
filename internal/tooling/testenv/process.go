package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one child: etcd, kube-apiserver, or a daemon a harness starts
// with Env.StartProcess.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set before done is closed
}

// startProcess runs argv with its output in logPath. The child gets SIGKILL if
// the test process dies (a panic skips deferred clean-ups), and it is recorded
// in the state directory so that the next run can reap it after a hard crash.
func startProcess(state *stateDir, name, logPath string, argv, env []string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	state.record(cmd.Process.Pid)
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		state.forget(cmd.Process.Pid)
		close(p.done)
	}()
	return p, nil
}

// Stop asks the process to exit (SIGTERM) and kills it after grace.
func (p *Process) Stop(grace time.Duration) { p.stop(grace) }

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits.
func (p *Process) Kill() { p.kill() }

// Signal sends sig to the process's group: SIGSTOP and SIGCONT freeze and
// thaw it as a stalled node or a long pause would.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, p.name, err)
	}
	return nil
}

// RSS is the process's resident memory in bytes (/proc/<pid>/statm).
func (p *Process) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("rss of %s: %w", p.name, err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		return 0, fmt.Errorf("rss of %s: %w", p.name, err)
	}
	return resident * int64(os.Getpagesize()), nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool { return p.exited() }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is where its output goes.
func (p *Process) LogPath() string { return p.logPath }

// Tail returns the last n lines of its output.
func (p *Process) Tail(n int) string { return p.tail(n) }

func (p *Process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill sends SIGKILL to the whole process group and waits for the exit.
func (p *Process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process log, for error messages.
func (p *Process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stateDir is this test process's directory under the shared testenv root. It
// names its owner's PID and lists the children, so a later run can tell a
// crashed run's leftovers from a live parallel run's.
type stateDir struct {
	path string
}

const stateRootName = "ferry-testenv"

func newStateDir() (*stateDir, error) {
	root := filepath.Join(os.TempDir(), stateRootName)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	reapStale(root)
	dir, err := os.MkdirTemp(root, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return &stateDir{path: dir}, nil
}

func (s *stateDir) pidFile(pid int) string {
	return filepath.Join(s.path, "pid-"+strconv.Itoa(pid))
}

func (s *stateDir) record(pid int) {
	_ = os.WriteFile(s.pidFile(pid), nil, 0o644)
}

func (s *stateDir) forget(pid int) { _ = os.Remove(s.pidFile(pid)) }

func (s *stateDir) remove() error { return os.RemoveAll(s.path) }

// reapStale kills the children of runs whose owner is gone and removes their
// directories. A PID is only killed while its command line names the run's
// directory (every child's does: its data dir, cert dir or kubeconfig), so a
// recycled PID is left alone; its executable would not do, as a child started
// through `ip netns exec` is still `ip` when it is recorded. The whole process
// group goes, since children run in their own.
func reapStale(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		owner, err := strconv.Atoi(strings.SplitN(e.Name(), "-", 2)[0])
		if err != nil || alive(owner) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		pids, _ := filepath.Glob(filepath.Join(dir, "pid-*"))
		for _, f := range pids {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(f), "pid-"))
			if err != nil {
				continue
			}
			if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), dir) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
