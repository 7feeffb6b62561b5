package benchpeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Report is a run's result: medians over repetitions, ratios from medians.
type Report struct {
	Started time.Time `json:"started"`
	Config  Config    `json:"config"`
	Machine Machine   `json:"machine"`
	Paths   []string  `json:"paths"`
	Rows    []Row     `json:"rows"`
	Notes   []string  `json:"notes"`

	index map[[2]string]int
}

// Machine describes where the run happened; ratios travel between
// machines much better than absolute numbers do.
type Machine struct {
	GoVersion     string `json:"go_version"`
	Platform      string `json:"platform"`
	CPUs          int    `json:"cpus"`
	CPUModel      string `json:"cpu_model,omitempty"`
	LoadStart     string `json:"load_avg_start,omitempty"`
	LoadEnd       string `json:"load_avg_end,omitempty"`
	FerryMode     string `json:"ferry_mode"`
	FerryCipher   string `json:"ferry_tls_cipher,omitempty"`
	HAProxy       string `json:"haproxy,omitempty"`
	HAProxyCipher string `json:"haproxy_tls_cipher,omitempty"`
}

// Row is one metric of one workload across paths.
type Row struct {
	Workload string `json:"workload"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// HigherIsBetter tells how to read the ratios: for latency and CPU a
	// ratio above 1 means Ferry is worse.
	HigherIsBetter bool                 `json:"higher_is_better"`
	Median         map[string]float64   `json:"median"`
	Runs           map[string][]float64 `json:"runs"`
	// Ratios of medians; absent when either side is missing or zero.
	FerryOverHAProxy *float64 `json:"ferry_over_haproxy,omitempty"`
	FerryOverDirect  *float64 `json:"ferry_over_direct,omitempty"`
}

func newReport(cfg Config) *Report {
	return &Report{
		Started: time.Now().UTC().Truncate(time.Second),
		Config:  cfg,
		Machine: Machine{
			GoVersion: runtime.Version(),
			Platform:  runtime.GOOS + "/" + runtime.GOARCH,
			CPUs:      runtime.NumCPU(),
			CPUModel:  cpuModel(),
		},
		index: map[[2]string]int{},
	}
}

func (r *Report) add(work, path string, got []measurement) {
	for _, m := range got {
		k := [2]string{work, m.metric}
		i, ok := r.index[k]
		if !ok {
			i = len(r.Rows)
			r.index[k] = i
			r.Rows = append(r.Rows, Row{
				Workload: work, Metric: m.metric, Unit: m.unit, HigherIsBetter: m.higher,
				Median: map[string]float64{}, Runs: map[string][]float64{},
			})
		}
		r.Rows[i].Runs[path] = append(r.Rows[i].Runs[path], m.value)
	}
}

// finish computes medians and ratios and adds the notes every reader needs.
func (r *Report) finish() {
	for i := range r.Rows {
		row := &r.Rows[i]
		for p, v := range row.Runs {
			row.Median[p] = median(v)
		}
		row.FerryOverHAProxy = ratio(row.Median, PathFerry, PathHAProxy)
		row.FerryOverDirect = ratio(row.Median, PathFerry, PathDirect)
	}
	r.Notes = append(r.Notes,
		"Client and backend run in the harness process for every path and share the same cores with the proxies.",
		"Ferry: both gateways (west egress, east ingress) in one process, production Limits, PoolSize 2: connections are streams on pre-established mTLS yamux sessions.",
		"Ferry's stream-count limits are raised so that the idle workload fits (MaxStreamsPerSession, MaxEgressConnsPerClient, and MaxCallerStreamMemory and MaxTotalStreamMemory, of which served streams may hold half in 256 KiB opening windows): the defaults admit 256 concurrent streams from one caller cluster.")
	if slices.Contains(r.Paths, PathHAProxy) {
		r.Notes = append(r.Notes, "HAProxy: two processes (west TCP → TLS 1.3 with client cert → east mTLS termination), nbthread = CPUs; TCP mode opens one TLS connection per client connection (session resumption on by default).")
	}
	if r.Config.FerryInProcess {
		r.Notes = append(r.Notes, "Ferry ran inside the harness: its CPU time cannot be told apart from the client's and backend's, so it has no proxy CPU figure.")
	}
	r.Notes = append(r.Notes,
		"proxy CPU is user+system time of the proxy processes from /proc/<pid>/stat (10 ms ticks); direct has no proxy. Ratios are Ferry ÷ other, from medians; for latency and CPU above 1 means Ferry is worse.")
}

func ratio(m map[string]float64, a, b string) *float64 {
	x, okA := m[a]
	y, okB := m[b]
	if !okA || !okB || y == 0 {
		return nil
	}
	v := x / y
	return &v
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("benchpeer: encode report: %w", err)
	}
	return nil
}

// WriteTable writes the human-readable table, with the machine line first
// and the notes after it.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "%s, %s, %d CPUs (%s); load avg %s → %s\n", m.GoVersion, m.Platform, m.CPUs, m.CPUModel, m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "ferry: %s, TLS %s\n", m.FerryMode, m.FerryCipher)
	if m.HAProxy != "" {
		fmt.Fprintf(w, "haproxy: %s, TLS %s\n", m.HAProxy, m.HAProxyCipher)
	}
	c := r.Config
	fmt.Fprintf(w, "median of %d reps; stream %d MiB each way; connrate %d conns; parallel %d conns × %d requests total; %d B messages\n\n",
		c.Reps, c.StreamBytes>>20, c.Conns, c.Parallel, c.Requests, c.MsgSize)

	// A Markdown table, padded for the terminal: it reads as-is and pastes
	// into docs/benchmarks.md unchanged.
	head := []string{"workload", "metric", "unit", "better"}
	head = append(head, r.Paths...)
	head = append(head, "ferry/haproxy", "ferry/direct")
	rows := [][]string{head}
	for _, row := range r.Rows {
		better := "lower"
		if row.HigherIsBetter {
			better = "higher"
		}
		cells := []string{row.Workload, row.Metric, row.Unit, better}
		for _, p := range r.Paths {
			v, ok := row.Median[p]
			if !ok {
				cells = append(cells, "–")
				continue
			}
			cells = append(cells, num(v))
		}
		cells = append(cells, ratioCell(row.FerryOverHAProxy), ratioCell(row.FerryOverDirect))
		rows = append(rows, cells)
	}
	if err := writeMarkdown(w, rows, 4); err != nil {
		return fmt.Errorf("benchpeer: write table: %w", err)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "- %s\n", n); err != nil {
			return fmt.Errorf("benchpeer: write table: %w", err)
		}
	}
	return nil
}

// num prints 3 significant digits, without exponents for everyday values.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func ratioCell(r *float64) string {
	if r == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f", *r)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// writeMarkdown pads rows[0] (the header) and the rest into a Markdown
// table; columns from textCols on are numbers and align right.
func writeMarkdown(w io.Writer, rows [][]string, textCols int) error {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i < textCols {
				b.WriteString("| " + c + pad + " ")
			} else {
				b.WriteString("| " + pad + c + " ")
			}
		}
		b.WriteString("|\n")
	}
	line(rows[0])
	for i := range width {
		if i < textCols {
			b.WriteString("|" + strings.Repeat("-", width[i]+2))
		} else {
			b.WriteString("|" + strings.Repeat("-", width[i]+1) + ":")
		}
	}
	b.WriteString("|\n")
	for _, r := range rows[1:] {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
