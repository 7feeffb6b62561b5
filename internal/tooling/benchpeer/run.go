package benchpeer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Path names, as they appear in the report.
const (
	PathDirect  = "direct"
	PathFerry   = "ferry"
	PathHAProxy = "haproxy"
)

// Workload names.
const (
	WorkStream   = "stream"
	WorkConnRate = "connrate"
	WorkParallel = "parallel"
	WorkWAN      = "wan"
)

// Config bounds a run. Zero fields take the defaults in DefaultConfig.
type Config struct {
	// StreamBytes is sent each way on the one stream connection.
	StreamBytes int64 `json:"stream_bytes"`
	// Conns is the number of sequential new connections (connrate).
	Conns int `json:"conns"`
	// Parallel connections share Requests request/responses (parallel).
	Parallel int `json:"parallel"`
	Requests int `json:"requests"`
	// MsgSize is the request and response size of connrate and parallel.
	MsgSize int `json:"msg_size"`
	// IdleConns are held open at once through each proxy, once per run,
	// to measure what an idle connection costs in memory. Each proxy
	// process (and this harness: client and backend sockets) holds two
	// descriptors per connection, so the default stays under a hard
	// RLIMIT_NOFILE of 20,000, which an unprivileged container cannot
	// raise.
	IdleConns int `json:"idle_conns"`
	// WANRTTs are the round trips of the WAN paths (a delay relay between
	// the two gateways, and between the two HAProxy instances); WANBytes
	// go each way on one stream, and again spread over WANStreams streams.
	WANRTTs    []time.Duration `json:"wan_rtts"`
	WANBytes   int64           `json:"wan_bytes"`
	WANStreams int             `json:"wan_streams"`
	// Reps is how many times every path runs every workload; the report
	// gives the median.
	Reps int `json:"reps"`
	// IOTimeout bounds every single read or write: a stuck path fails the
	// run instead of hanging it.
	IOTimeout time.Duration `json:"io_timeout"`
	// Timeout bounds the whole run, child processes included.
	Timeout time.Duration `json:"timeout"`

	// HAProxy is the haproxy binary ("" = on PATH); SkipHAProxy leaves the
	// peer out, and the report says so.
	HAProxy     string `json:"-"`
	SkipHAProxy bool   `json:"skip_haproxy"`
	// FerryInProcess runs the Ferry pair inside the harness instead of in a
	// re-executed child; then its CPU time cannot be separated from the
	// client's and backend's, and is not reported.
	FerryInProcess bool `json:"ferry_in_process"`
	// FerryCPUProfile, if set, is a file the Ferry child writes a CPU
	// profile of the whole run to (child mode only).
	FerryCPUProfile string `json:"-"`

	// Progress, if set, gets one line per measurement as it finishes.
	Progress io.Writer `json:"-"`
}

// DefaultConfig is the documented run: ≈ 1–2 minutes on two shared cores.
func DefaultConfig() Config {
	return Config{
		StreamBytes: 256 << 20,
		Conns:       2000,
		Parallel:    128,
		Requests:    50000,
		MsgSize:     128,
		IdleConns:   9000,
		WANRTTs:     []time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
		WANBytes:    16 << 20,
		WANStreams:  16,
		Reps:        3,
		IOTimeout:   30 * time.Second,
		Timeout:     15 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if c.StreamBytes == 0 {
		c.StreamBytes = d.StreamBytes
	}
	set(&c.Conns, d.Conns)
	set(&c.Parallel, d.Parallel)
	set(&c.Requests, d.Requests)
	set(&c.MsgSize, d.MsgSize)
	set(&c.IdleConns, d.IdleConns)
	set(&c.WANStreams, d.WANStreams)
	if c.WANRTTs == nil {
		c.WANRTTs = d.WANRTTs
	}
	if c.WANBytes == 0 {
		c.WANBytes = d.WANBytes
	}
	set(&c.Reps, d.Reps)
	if c.IOTimeout == 0 {
		c.IOTimeout = d.IOTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// validate keeps a run bounded: every count has a ceiling, so a typo cannot
// turn the harness into a load generator.
func (c Config) validate() error {
	switch {
	case c.StreamBytes < 1 || c.StreamBytes > 16<<30:
		return fmt.Errorf("benchpeer: stream bytes %d outside 1 B–16 GiB", c.StreamBytes)
	case c.Conns < 1 || c.Conns > 100_000:
		return fmt.Errorf("benchpeer: conns %d outside 1–100000", c.Conns)
	case c.Parallel < 1 || c.Parallel > 1024:
		return fmt.Errorf("benchpeer: parallel %d outside 1–1024", c.Parallel)
	case c.Requests < c.Parallel || c.Requests > 10_000_000:
		return fmt.Errorf("benchpeer: requests %d outside parallel (%d)–10000000", c.Requests, c.Parallel)
	case c.MsgSize < 1 || c.MsgSize > 1<<20:
		return fmt.Errorf("benchpeer: message size %d outside 1 B–1 MiB", c.MsgSize)
	case c.IdleConns < 1 || c.IdleConns > 50_000:
		return fmt.Errorf("benchpeer: idle connections %d outside 1–50000", c.IdleConns)
	case len(c.WANRTTs) > 4 || slices.ContainsFunc(c.WANRTTs, func(d time.Duration) bool { return d < time.Millisecond || d > time.Second }):
		return errors.New("benchpeer: at most 4 WAN round trips, each 1 ms–1 s")
	case c.WANBytes < int64(c.WANStreams) || c.WANBytes > 1<<30:
		return fmt.Errorf("benchpeer: WAN bytes %d outside WAN streams (%d)–1 GiB", c.WANBytes, c.WANStreams)
	case c.WANStreams < 1 || c.WANStreams > 256:
		return fmt.Errorf("benchpeer: WAN streams %d outside 1–256", c.WANStreams)
	case c.Reps < 1 || c.Reps > 20:
		return fmt.Errorf("benchpeer: reps %d outside 1–20", c.Reps)
	case c.IOTimeout < 0 || c.Timeout < 0:
		return errors.New("benchpeer: timeouts must not be negative")
	case c.FerryCPUProfile != "" && c.FerryInProcess:
		return errors.New("benchpeer: a Ferry CPU profile needs the child process (not in-process)")
	}
	return nil
}

// target is one path under test.
type target struct {
	name string
	addr string
	// cpu is the proxy processes' CPU time so far, and rss their resident
	// memory; nil when the path has no proxy of its own to measure
	// (direct, or Ferry in-process).
	cpu func() (time.Duration, error)
	rss func() (int64, error)
	// wan are the path's addresses through the delay relays, one per
	// Config.WANRTTs; none for direct.
	wan []string
}

// Run measures every path on every workload, cfg.Reps times, and reports
// the medians. It starts and stops everything it uses.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	rep := newReport(cfg)
	// Before the proxies start: they inherit the limit.
	if err := raiseNoFile(cfg.IdleConns); err != nil {
		return nil, err
	}
	be, err := newBackend(cfg.IOTimeout)
	if err != nil {
		return nil, err
	}
	defer be.close()

	targets := []target{{name: PathDirect, addr: be.addr()}}

	// One relay per round trip and proxy; the harness runs them, so their
	// CPU is in neither proxy's figure.
	relays := func() ([]*delayRelay, []string, error) {
		var rs []*delayRelay
		var addrs []string
		for _, rtt := range cfg.WANRTTs {
			r, err := startRelay(rtt)
			if err != nil {
				return nil, nil, err
			}
			rs = append(rs, r)
			addrs = append(addrs, r.addr())
		}
		return rs, addrs, nil
	}
	var allRelays []*delayRelay
	defer func() {
		for _, r := range allRelays {
			r.close()
		}
	}()
	ferryRelays, ferryRelayAddrs, err := relays()
	allRelays = append(allRelays, ferryRelays...)
	if err != nil {
		return nil, err
	}

	if cfg.FerryInProcess {
		f, err := startFerry(ctx, be.addr(), cfg.IdleConns, ferryRelayAddrs)
		if err != nil {
			return nil, err
		}
		defer f.close()
		for _, r := range ferryRelays {
			r.setTarget(f.ingress)
		}
		targets = append(targets, target{name: PathFerry, addr: f.addr, wan: f.wan})
		rep.Machine.FerryCipher = f.cipher
		rep.Machine.FerryMode = "in-process (proxy CPU not separable)"
	} else {
		fc, err := startFerryChild(ctx, be.addr(), cfg.FerryCPUProfile, cfg.IdleConns, ferryRelayAddrs, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		defer fc.stop()
		for _, r := range ferryRelays {
			r.setTarget(fc.ingress)
		}
		targets = append(targets, target{name: PathFerry, addr: fc.addr, cpu: fc.cpu, rss: fc.rss, wan: fc.wan})
		rep.Machine.FerryCipher = fc.cipher
		rep.Machine.FerryMode = "child process (both gateways in one process)"
	}

	if cfg.SkipHAProxy {
		rep.Notes = append(rep.Notes, "HAProxy path skipped: no peer figures or ratios in this run.")
	} else {
		bin, err := LookHAProxy(cfg.HAProxy)
		if err != nil {
			return nil, err
		}
		rep.Machine.HAProxy = haproxyVersion(ctx, bin)
		hpRelays, _, err := relays()
		allRelays = append(allRelays, hpRelays...)
		if err != nil {
			return nil, err
		}
		hp, err := startHAProxy(ctx, bin, be.addr(), max(4096, cfg.IdleConns+100), hpRelays, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		defer hp.close()
		rep.Machine.HAProxyCipher = hp.cipher
		targets = append(targets, target{name: PathHAProxy, addr: hp.addr, cpu: hp.cpu, rss: hp.rss, wan: hp.wan})
	}
	for _, t := range targets {
		rep.Paths = append(rep.Paths, t.name)
	}

	// Warm up every path (session caches, pools, page cache of the
	// binaries, Go's heap) so the first measured repetition is not special.
	for _, t := range targets {
		if _, _, err := runConnRate(ctx, t.addr, 20, cfg.MsgSize, cfg.IOTimeout); err != nil {
			return nil, fmt.Errorf("benchpeer: warm-up %s: %w", t.name, err)
		}
		if _, err := runStream(ctx, t.addr, min(cfg.StreamBytes, 4<<20), cfg.IOTimeout); err != nil {
			return nil, fmt.Errorf("benchpeer: warm-up %s: %w", t.name, err)
		}
	}

	rep.Machine.LoadStart = loadAvg()
	for r := range cfg.Reps {
		for _, work := range []string{WorkStream, WorkConnRate, WorkParallel, WorkWAN} {
			// Rotate the order each repetition, so no path always runs
			// first (cold) or last (after the others' garbage).
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				got, err := measure(ctx, cfg, work, t)
				if err != nil {
					return nil, fmt.Errorf("benchpeer: rep %d %s via %s: %w", r+1, work, t.name, err)
				}
				rep.add(work, t.name, got)
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "rep %d/%d %-8s %-8s %s\n", r+1, cfg.Reps, work, t.name, summary(got))
				}
			}
		}
	}
	// Idle connections, once per proxy: their memory is a level, not a
	// rate, and ten thousand TLS handshakes through HAProxy take a while.
	for _, t := range targets {
		if t.rss == nil {
			continue
		}
		got, err := measureIdle(ctx, cfg, t)
		if err != nil {
			return nil, fmt.Errorf("benchpeer: %s via %s: %w", WorkIdle, t.name, err)
		}
		rep.add(WorkIdle, t.name, got)
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "%-8s %-8s %s\n", WorkIdle, t.name, summary(got))
		}
	}
	rep.Machine.LoadEnd = loadAvg()
	if err := be.firstErr(); err != nil {
		return nil, fmt.Errorf("benchpeer: backend saw a protocol error: %w", err)
	}
	rep.finish()
	return rep, nil
}

// measurement is one metric's value from one run of one workload.
type measurement struct {
	metric, unit string
	higher       bool // higher is better
	value        float64
}

func measure(ctx context.Context, cfg Config, work string, t target) ([]measurement, error) {
	cpu0, err := proxyCPU(t)
	if err != nil {
		return nil, err
	}
	var out []measurement
	var perUnit float64 // divisor for proxy CPU
	var cpuUnit string
	switch work {
	case WorkStream:
		r, err := runStream(ctx, t.addr, cfg.StreamBytes, cfg.IOTimeout)
		if err != nil {
			return nil, err
		}
		mb := float64(cfg.StreamBytes) / 1e6
		out = append(out,
			measurement{"up (client→backend)", "MB/s", true, mb / r.up.Seconds()},
			measurement{"down (backend→client)", "MB/s", true, mb / r.down.Seconds()})
		perUnit, cpuUnit = 2*float64(cfg.StreamBytes)/(1<<20), "µs/MiB"
	case WorkConnRate:
		lat, elapsed, err := runConnRate(ctx, t.addr, cfg.Conns, cfg.MsgSize, cfg.IOTimeout)
		if err != nil {
			return nil, err
		}
		out = append(out,
			measurement{"new conns/s", "conn/s", true, float64(cfg.Conns) / elapsed.Seconds()},
			measurement{"connect+echo p50", "ms", false, ms(percentile(lat, 0.50))},
			measurement{"connect+echo p99", "ms", false, ms(percentile(lat, 0.99))})
		perUnit, cpuUnit = float64(cfg.Conns), "µs/conn"
	case WorkParallel:
		lat, elapsed, err := runParallel(ctx, t.addr, cfg.Parallel, cfg.Requests, cfg.MsgSize, cfg.IOTimeout)
		if err != nil {
			return nil, err
		}
		out = append(out,
			measurement{"requests/s", "req/s", true, float64(cfg.Requests) / elapsed.Seconds()},
			measurement{"request p50", "ms", false, ms(percentile(lat, 0.50))},
			measurement{"request p99", "ms", false, ms(percentile(lat, 0.99))})
		perUnit, cpuUnit = float64(cfg.Requests), "µs/req"
	case WorkWAN:
		if len(t.wan) == 0 {
			return nil, nil // direct has no WAN
		}
		return measureWAN(ctx, cfg, t)
	default:
		return nil, fmt.Errorf("unknown workload %q", work)
	}
	if t.cpu != nil {
		cpu1, err := proxyCPU(t)
		if err != nil {
			return nil, err
		}
		us := float64(cpu1-cpu0) / float64(time.Microsecond)
		out = append(out, measurement{"proxy CPU", cpuUnit, false, us / perUnit})
	}
	return out, nil
}

func proxyCPU(t target) (time.Duration, error) {
	if t.cpu == nil {
		return 0, nil
	}
	return t.cpu()
}

func summary(got []measurement) string {
	s := ""
	for i, m := range got {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.4g %s", m.metric, m.value, m.unit)
	}
	return s
}
