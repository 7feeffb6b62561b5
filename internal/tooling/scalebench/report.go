package scalebench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what a run measured. Durations are in the JSON as nanoseconds;
// Rows is the same content as the table.
type Report struct {
	Exports, Ports, Importers, Changes int
	Idle                               time.Duration
	Concurrency                        int
	// EgressPorts is the range installed ("" = the install's default,
	// DefaultEgressPorts).
	EgressPorts, DefaultEgressPorts string

	SandboxStart time.Duration
	// ExportsCreated: N Services + EndpointSlices + ServiceExports written
	// on the exporter. FeedReady: from the first write until a feed client
	// holds all N exports.
	ExportsCreated, FeedReady time.Duration
	// Import: from the Link's creation until the harness's watch has seen
	// all N mirror Services and their EndpointSlices on the importer.
	Import time.Duration
	// ClustersetImport: from the Link's creation until every export has a
	// ServiceImport with its clusters and IPs (the clusterset objects).
	ClustersetImport time.Duration
	// ImportWrites is the controller's ferry_importer_writes_total growth
	// over the import.
	ImportWrites float64
	// ImportControllerCPU and ImportGatewayCPU are the importer's
	// controller's and gateway's CPU seconds over the import.
	ImportControllerCPU, ImportGatewayCPU float64
	// Floor: from the first write until the watch has seen N Services and
	// N EndpointSlices written directly, at Concurrency and the
	// controller's QPS.
	Floor      time.Duration
	FloorRatio float64

	// ChangeLatency: K changes of one export, each from the ServiceExport
	// patch until the importer's watch saw the mirror change.
	ChangeLatency Latency
	// FeedLatency: the same changes, until a feed client of the harness's
	// own saw them: the exporting side's share of ChangeLatency.
	FeedLatency Latency
	// ExportSeen: the same changes, until a watch of the ServiceExport on
	// the exporter's API server saw them (the patch and the watch alone).
	ExportSeen Latency
	// GatewayCPUPerChange is the exporting gateway's CPU seconds per change
	// with only the controller subscribed.
	GatewayCPUPerChange float64

	Controller, ControllerAfterIdle Memory
	ImporterGateway, Gateway        Memory
	// ExporterController is the exporting cluster's controller (no Link),
	// and ExporterControllerCPU its CPU seconds since it started.
	ExporterController    Memory
	ExporterControllerCPU float64
	// ExporterControllerStopped: Config.StopExporterController.
	ExporterControllerStopped bool

	// Reconciles are the importing controller's reconciles and errors per
	// controller, after the idle window.
	Reconciles string

	// Idle API writes on the importer, scaled to one minute.
	IdleLeaseWrites, IdleOtherWrites float64
	IdleOtherByResource              map[string]float64
	// Controller's own writes per idle minute: client-go's
	// rest_client_requests_total (lease included) and Ferry's
	// ferry_importer_writes_total.
	IdleControllerClientWrites, IdleControllerFerryWrites float64

	// Fan-out with Importers feed clients.
	FanoutSnapshot                                     time.Duration
	FanoutGateway                                      Memory
	FanoutCPUPerChange                                 float64
	FanoutWireBytesPerChange, FanoutFeedBytesPerChange float64
	// FanoutAll: per change, until the last client saw it.
	// FanoutEach: every client's own latency, all changes.
	FanoutAll, FanoutEach Latency
	FanoutMirrorLatency   Latency
	FanoutReconnects      int64
	// FanoutDisconnects counts why the clients' streams ended;
	// FanoutRejected is the gateway's ferry_feed_rejected_total.
	FanoutDisconnects map[string]int
	FanoutRejected    float64

	// OtherLoad is, per phase, the cores other processes on the machine
	// kept busy on average (machine CPU minus this run's process tree).
	OtherLoad map[string]float64
}

// Latency summarises samples.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

func summarise(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Latency{N: len(s), P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", ms(l.P50), ms(l.P99), ms(l.Max), l.N)
}

// Row is one line of the table.
type Row struct {
	Figure, Value, Goal string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}
func mb(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }

func (m Memory) String() string {
	heap := "heap n/a"
	if m.Heap.InUse > 0 {
		heap = "heap in use " + mb(m.Heap.InUse) + ", heap sys " + mb(m.Heap.Sys) + ", released " + mb(m.Heap.Released)
	}
	gc := "no GC yet"
	if m.GCs > 0 {
		gc = fmt.Sprintf("live after GC #%d %s", m.GCs, mb(m.LiveAtGC))
	}
	return fmt.Sprintf("RSS %s (%s; %s)", mb(float64(m.RSS)), heap, gc)
}

// Rows is the report as figure | value | goal; goals are the issue's.
func (r *Report) Rows() []Row {
	egress := r.EgressPorts
	if egress == "" {
		egress = r.DefaultEgressPorts + " (install default)"
	} else {
		egress += " (widened; default " + r.DefaultEgressPorts + ")"
	}
	var other []string
	for _, k := range slices.Sorted(maps.Keys(r.IdleOtherByResource)) {
		other = append(other, fmt.Sprintf("%s %.1f", k, r.IdleOtherByResource[k]))
	}
	otherDetail := "none"
	if len(other) > 0 {
		otherDetail = strings.Join(other, ", ")
	}
	var loads []string
	for _, k := range slices.Sorted(maps.Keys(r.OtherLoad)) {
		loads = append(loads, fmt.Sprintf("%s %.2f", k, r.OtherLoad[k]))
	}
	load := strings.Join(loads, ", ")
	n := r.Exports
	return []Row{
		{"exports (N) × TCP ports each", fmt.Sprintf("%d × %d", n, r.Ports), ""},
		{"egress port range installed", egress, "holds N × ports"},
		{"write concurrency (harness and floor)", fmt.Sprint(r.Concurrency), "controller's: 16, QPS 1000"},
		{"sandbox start (2 clusters)", secs(r.SandboxStart), ""},
		{"exports written on the exporter (3 objects each)", secs(r.ExportsCreated), ""},
		{"first export write → feed client holds all N", secs(r.FeedReady), ""},
		{"initial import: Link created → watch saw N mirror Services + N EndpointSlices", secs(r.Import), ""},
		{"clusterset objects: Link created → N ServiceImports with clusters and IPs", secs(r.ClustersetImport), ""},
		{"controller writes during the import (ferry_importer_writes_total)", fmt.Sprintf("%.0f (%.2f per export)", r.ImportWrites, r.ImportWrites/float64(n)), "2 per export"},
		{"CPU over the import: importing controller, importing gateway", fmt.Sprintf("%.1f s, %.1f s", r.ImportControllerCPU, r.ImportGatewayCPU), ""},
		{"API floor: N Services + N EndpointSlices written directly → watch saw all", secs(r.Floor), ""},
		{"import / floor", fmt.Sprintf("%.2f×", r.FloorRatio), "≤ 1.25×"},
		{"change latency, N imported (patch → importer watch sees mirror)", r.ChangeLatency.String(), "p99 ≤ 100 ms"},
		{"… of which on the exporting side (patch → on the feed)", r.FeedLatency.String(), ""},
		{"… of which the exporter's API server (patch → a watch of the ServiceExport sees it)", r.ExportSeen.String(), ""},
		{"exporting gateway CPU per change, 1 subscriber", ms(time.Duration(r.GatewayCPUPerChange * float64(time.Second))), ""},
		{"controller after sync (no forced GC: no endpoint for one; gctrace live heap instead)", r.Controller.String(), "RSS ≤ 100 MB at 10k"},
		{"controller after changes and idle window", r.ControllerAfterIdle.String(), "RSS ≤ 100 MB at 10k"},
		{"importing gateway after sync (N egress listeners)", r.ImporterGateway.String(), ""},
		{"exporting gateway after sync, 1 subscriber", r.Gateway.String(), ""},
		{"exporting cluster's controller (no Link) after sync; CPU since start", exporterController(r), ""},
		{"importer API writes per idle minute: leases (apiserver_request_total)", fmt.Sprintf("%.1f", r.IdleLeaseWrites), "only the lease"},
		{"importer API writes per idle minute: others", fmt.Sprintf("%.1f (%s)", r.IdleOtherWrites, otherDetail), "0"},
		{"controller's own writes per idle minute (rest_client_requests_total, lease incl.)", fmt.Sprintf("%.1f", r.IdleControllerClientWrites), "lease renewals only"},
		{"controller's Ferry writes per idle minute (ferry_importer_writes_total)", fmt.Sprintf("%.1f", r.IdleControllerFerryWrites), "0"},
		{"importing controller's reconciles after the idle window (controller_runtime_reconcile_total)", r.Reconciles, ""},
		{fmt.Sprintf("fan-out: %d feed clients subscribe → all hold N exports", r.Importers), secs(r.FanoutSnapshot), ""},
		{fmt.Sprintf("exporting gateway, N exports and %d+1 subscribers", r.Importers), r.FanoutGateway.String(), "RSS ≤ 150 MB at 10k and 50"},
		{"feed server CPU per change (gateway utime+stime / K)", ms(time.Duration(r.FanoutCPUPerChange * float64(time.Second))), ""},
		{"feed bytes per change per importer, client-side wire (TLS records read)", fmt.Sprintf("%.0f B", r.FanoutWireBytesPerChange), "≤ 1 KB"},
		{"feed bytes per change per importer, gateway ferry_feed_bytes_sent_total", fmt.Sprintf("%.0f B", r.FanoutFeedBytesPerChange), "≤ 1 KB"},
		{fmt.Sprintf("change → all %d clients saw it", r.Importers), r.FanoutAll.String(), ""},
		{"change → each client saw it", r.FanoutEach.String(), ""},
		{"change → importer mirror, during fan-out", r.FanoutMirrorLatency.String(), "p99 ≤ 100 ms"},
		{"feed client reconnects during the run (gateway's ferry_feed_rejected_total)", fmt.Sprintf("%d (%.0f)", r.FanoutReconnects, r.FanoutRejected), "0"},
		{"other processes' CPU during each phase (avg cores, of " + strconv.Itoa(runtime.NumCPU()) + ")", load, "0: a quiet machine"},
	}
}

// WriteTable writes the rows as a Markdown table.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| figure | value | goal |\n|---|---|---|\n")
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", row.Figure, row.Value, row.Goal)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the rows and the raw figures.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Rows   []Row
		Report *Report
	}{r.Rows(), r})
}

func exporterController(r *Report) string {
	if r.ExporterControllerStopped {
		return "stopped once the sandbox was up (-stop-exporter-controller)"
	}
	return fmt.Sprintf("%s; CPU %.1f s", r.ExporterController, r.ExporterControllerCPU)
}
