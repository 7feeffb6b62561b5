package scalebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports; reading it through
// sysconf would need cgo.
const clockTicks = 100

// cpuSeconds is utime+stime of pid (all its threads), in seconds.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields from after its closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu of %d: malformed stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ")": state is field 3, so utime (14) and stime (15) are at
	// indexes 11 and 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu of %d: malformed utime/stime", pid)
	}
	return float64(ut+st) / clockTicks, nil
}

// GoHeap is what a daemon's Go runtime reports about its heap.
type GoHeap struct {
	InUse, Sys, Released float64
}

// heapOf scrapes the heap figures from a daemon's /metrics text. A
// missing family reads 0 (MetricSum), which the report shows as absent.
func heapOf(text string) (GoHeap, error) {
	var h GoHeap
	for _, f := range []struct {
		name string
		dst  *float64
	}{
		{"go_memstats_heap_inuse_bytes", &h.InUse},
		{"go_memstats_heap_sys_bytes", &h.Sys},
		{"go_memstats_heap_released_bytes", &h.Released},
	} {
		v, err := sandbox.MetricSum(text, f.name, nil)
		if err != nil {
			return h, err
		}
		*f.dst = v
	}
	return h, nil
}

// Memory is one daemon's RSS and heap at one moment.
type Memory struct {
	RSS  int64
	Heap GoHeap
	// LiveAtGC is the live heap the last GC left, in bytes, and GCs its
	// number, from the runtime's gctrace (the harness starts the daemons
	// with GODEBUG=gctrace=1): the heap without garbage, which no metric
	// shows and nothing else can force. 0 when no GC has run yet.
	LiveAtGC float64
	GCs      int
}

func readMemory(ctx context.Context, p *testenv.Process, scrape func(context.Context) (string, error)) (Memory, error) {
	var m Memory
	var err error
	if m.RSS, err = p.RSS(); err != nil {
		return m, err
	}
	text, err := scrape(ctx)
	if err != nil {
		return m, fmt.Errorf("scrape metrics: %w", err)
	}
	if m.Heap, err = heapOf(text); err != nil {
		return m, err
	}
	m.GCs, m.LiveAtGC = lastGC(p.LogPath())
	return m, nil
}

// gcLine matches gctrace's "gc 12 @3.4s 1%: ..., 4->5->2 MB, ...": heap at
// the start and end of the cycle, then the live heap it marked.
var gcLine = regexp.MustCompile(`(?m)^gc (\d+) @[0-9.]+s .* (\d+)->(\d+)->(\d+) MB`)

// lastGC reads the last gctrace line of a daemon's log.
func lastGC(logPath string) (n int, live float64) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	// The last megabyte holds the last GC of any daemon that logs at all.
	const tail = 1 << 20
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	data, _ := io.ReadAll(io.LimitReader(f, tail))
	all := gcLine.FindAllSubmatch(data, -1)
	if len(all) == 0 {
		return 0, 0
	}
	last := all[len(all)-1]
	n, _ = strconv.Atoi(string(last[1]))
	mb, _ := strconv.ParseFloat(string(last[4]), 64)
	return n, mb * (1 << 20)
}

// machineCPU is the CPU seconds every process on the machine has used
// since boot (/proc/stat's first line, idle and iowait excluded).
func machineCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("machine cpu: malformed /proc/stat")
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("machine cpu: %w", err)
		}
		busy += v
	}
	return float64(busy) / clockTicks, nil
}

// treeCPU is the CPU seconds of pid and every live descendant, plus what
// their reaped children used (cutime, cstime): this run's own share of
// the machine.
func treeCPU(pid int) float64 {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 15 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var total float64
	for p := range parent {
		for a, hops := p, 0; a > 1 && hops < 64; a, hops = parent[a], hops+1 {
			if a == pid {
				total += procCPU(p)
				break
			}
		}
	}
	return total
}

// procCPU is utime+stime+cutime+cstime of pid in seconds, 0 if gone.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0
	}
	var sum uint64
	for _, j := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseUint(f[j], 10, 64)
		sum += v
	}
	return float64(sum) / clockTicks
}
