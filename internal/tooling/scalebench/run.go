package scalebench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/importer"
	"ferry.dev/ferry/internal/profiling"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// The clusters: the floor is written on a third, as fresh as the
// importer was when the import began. Written on the importer after the
// import, it ran on an API server and etcd already holding N mirrors and N
// clusterset services, and at 9,500 took three times as long as the
// import: no floor to compare with.
const (
	exporterName = "exporter"
	importerName = "importer"
	floorName    = "floor"
)

// changeTimeout bounds the wait for one change to arrive everywhere.
const changeTimeout = 30 * time.Second

// bench is one run's state.
type bench struct {
	cfg      Config
	sb       *sandbox.Sandbox
	exp, imp *sandbox.Cluster
	// floorC runs Ferry's daemons like the importer, never linked.
	floorC *sandbox.Cluster
	r      *Report
	logf   func(string, ...any)
	// expKube and expClient write to the exporter at the controller's rate
	// limits; a default client-go config (5 QPS) would measure itself.
	expKube   kubernetes.Interface
	expClient client.Client
	// mirrors watches the importer's mirrors of the exporter's exports.
	mirrors *observer
	// target is the export every change is made to.
	target int
}

// Run measures one configuration and returns the report. Everything it
// starts is stopped before it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "[%7.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	r := &Report{
		Exports: cfg.Exports, Ports: cfg.Ports, Importers: cfg.Importers, Changes: cfg.Changes,
		Idle: cfg.Idle, Concurrency: cfg.Concurrency,
		EgressPorts: cfg.EgressPorts, DefaultEgressPorts: contract.DefaultEgressRange().String(),
	}
	if cfg.EgressPorts != "" {
		logf("%d exports × %d ports need more egress ports than the default range %s: installing with egress range %s",
			cfg.Exports, cfg.Ports, r.DefaultEgressPorts, cfg.EgressPorts)
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{
		Clusters: []string{exporterName, importerName, floorName}, EgressPorts: cfg.EgressPorts,
		DaemonEnv: []string{"GODEBUG=gctrace=1"},
		Pprof:     cfg.Profiles != "",
		Logf:      func(format string, args ...any) { logf("sandbox: "+format, args...) },
	})
	if err != nil {
		return nil, err
	}
	defer sb.Stop()
	r.SandboxStart = time.Since(start)
	b := &bench{cfg: cfg, sb: sb, exp: sb.Cluster(exporterName), imp: sb.Cluster(importerName), floorC: sb.Cluster(floorName),
		r: r, logf: logf, target: cfg.Exports / 2}
	if b.expKube, b.expClient, err = fastClients(b.exp); err != nil {
		return nil, err
	}
	if cfg.StopExporterController {
		b.exp.Controller.Stop(10 * time.Second)
		r.ExporterControllerStopped = true
		logf("stopped %s's controller: the run measures its gateway only", exporterName)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"exports", b.createExports},
		{"import", b.importAll},
		{"memory after sync", b.memoryAfterSync},
		{"change latency", b.changeLatency},
		{"idle writes", b.idleWrites},
		{"API floor", b.floor},
		{"fan-out", b.fanout},
	}
	r.OtherLoad = map[string]float64{}
	for _, s := range steps {
		done := b.otherLoad(s.name)
		if err := s.fn(ctx); err != nil {
			return r, fmt.Errorf("scalebench: %s: %w", s.name, err)
		}
		done()
	}
	if b.mirrors != nil {
		b.mirrors.Stop()
	}
	logf("done in %s", time.Since(start).Round(time.Second))
	return r, nil
}

// otherLoad measures, from now until the returned func is called, how
// many cores other processes on the machine (not this run's process tree)
// kept busy: the figures of a phase that ran beside someone else's load
// are not the harness's alone.
func (b *bench) otherLoad(phase string) func() {
	m0, err := machineCPU()
	if err != nil {
		return func() {}
	}
	own0, start := treeCPU(os.Getpid()), time.Now()
	return func() {
		m1, err := machineCPU()
		if err != nil {
			return
		}
		other := (m1 - m0) - (treeCPU(os.Getpid()) - own0)
		b.r.OtherLoad[phase] = max(other, 0) / time.Since(start).Seconds()
	}
}

// fastClients are clients of c with the controller's rate limits.
func fastClients(c *sandbox.Cluster) (kubernetes.Interface, client.Client, error) {
	cfg := rest.CopyConfig(c.API.RestConfig)
	cfg.QPS, cfg.Burst = importer.DefaultQPS, importer.DefaultBurst
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", c.Name, err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: c.API.Client.Scheme()})
	if err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", c.Name, err)
	}
	return kube, cl, nil
}

// createExports writes the N exports, then waits until a feed client of
// its own holds them all, so the import starts from a complete feed.
func (b *bench) createExports(ctx context.Context) error {
	for _, ns := range []struct {
		c    *sandbox.Cluster
		name string
	}{{b.exp, exportNamespace}, {b.imp, exportNamespace}, {b.floorC, floorNamespace}} {
		if err := ns.c.API.EnsureNamespace(ctx, ns.name); err != nil {
			return err
		}
	}
	b.logf("creating %d exports (Service + EndpointSlice + ServiceExport, %d port(s) each) on %s, %d at a time",
		b.cfg.Exports, b.cfg.Ports, exporterName, b.cfg.Concurrency)
	// The endpoint is a pod address nothing listens on: no traffic is sent.
	podIP := b.exp.Site.PodAddr(200)
	start := time.Now()
	var written atomic.Int64
	done := make(chan struct{})
	go b.every(ctx, done, func() { b.logf("  … %d exports written", written.Load()) })
	err := forEach(ctx, b.cfg.Exports, b.cfg.Concurrency, func(ctx context.Context, i int) error {
		defer written.Add(1)
		return createExport(ctx, b.expKube, b.expClient, podIP, i, b.cfg.Ports)
	})
	close(done)
	if err != nil {
		return err
	}
	b.r.ExportsCreated = time.Since(start)
	b.logf("exports written in %s; waiting until the exporter's feed carries them all", b.r.ExportsCreated.Round(time.Millisecond))
	probe, err := startFeedClient(ctx, b.sb, b.exp, b.imp, "bench-probe")
	if err != nil {
		return err
	}
	defer probe.Stop()
	if err := probe.waitExports(ctx, b.cfg.Exports); err != nil {
		return err
	}
	b.r.FeedReady = time.Since(start)
	b.logf("feed carries %d exports, %s after the first write", b.cfg.Exports, b.r.FeedReady.Round(time.Millisecond))
	return nil
}

// importAll links the importer and times until the watch has seen every
// mirror Service and EndpointSlice. The clock starts at the Link's
// creation, with the exports already in the feed: it is the import's time,
// not the exporter's.
func (b *bench) importAll(ctx context.Context) error {
	var err error
	sel := contract.LabelSourceCluster + "=" + exporterName
	if b.mirrors, err = watchNamespace(ctx, b.imp.API.Kube, exportNamespace, sel); err != nil {
		return err
	}
	_, w0, err := controllerWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	b.logf("linking %s to %s; waiting for %d mirrors and their EndpointSlices", importerName, exporterName, b.cfg.Exports)
	ctl0, _ := cpuSeconds(b.imp.Controller.PID())
	gw0, _ := cpuSeconds(b.imp.Gateway.PID())
	start := time.Now()
	if _, err := b.sb.Link(ctx, importerName, exporterName, sandbox.LinkOptions{}); err != nil {
		return err
	}
	done := make(chan struct{})
	go b.every(ctx, done, func() {
		s, sl := b.mirrors.counts()
		b.logf("  … %d mirror Services, %d EndpointSlices", s, sl)
	})
	at, err := b.mirrors.waitCounts(ctx, b.cfg.Exports, b.cfg.Exports)
	close(done)
	if err != nil {
		return fmt.Errorf("%w\n--- controller (last lines) ---\n%s", err, b.imp.Controller.Tail(20))
	}
	b.r.Import = at.Sub(start)
	// What the import cost the importer's daemons: the controller writes
	// the mirrors, the gateway opens an egress listener for each.
	ctl1, _ := cpuSeconds(b.imp.Controller.PID())
	gw1, _ := cpuSeconds(b.imp.Gateway.PID())
	b.r.ImportControllerCPU, b.r.ImportGatewayCPU = ctl1-ctl0, gw1-gw0
	_, w1, err := controllerWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	b.r.ImportWrites = w1 - w0
	b.logf("imported: %d mirrors in %s (%.0f controller writes)", b.cfg.Exports, b.r.Import.Round(time.Millisecond), b.r.ImportWrites)
	// The clusterset objects (a Service, a slice and a ServiceImport with
	// its status per export) follow the mirrors. Until they are written,
	// the API server is busy with them, and a change measured then would
	// measure that queue, not Ferry's path.
	b.logf("waiting for %d ServiceImports with their clusters", b.cfg.Exports)
	var ready atomic.Int64
	imported := make(chan struct{})
	go b.every(ctx, imported, func() { b.logf("  … %d ServiceImports with clusters and IPs", ready.Load()) })
	err = waitImportsReady(ctx, b.imp.API.RestConfig, b.imp.API.Client.Scheme(), exportNamespace, b.cfg.Exports, &ready)
	close(imported)
	if err != nil {
		return err
	}
	b.r.ClustersetImport = time.Since(start)
	b.logf("clusterset objects complete %s after the Link", b.r.ClustersetImport.Round(time.Millisecond))
	return nil
}

// every calls fn every few seconds until done, for progress lines.
func (b *bench) every(ctx context.Context, done <-chan struct{}, fn func()) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
			fn()
		}
	}
}

func (b *bench) memoryAfterSync(ctx context.Context) error {
	if err := b.heapProfiles(ctx, "after-sync"); err != nil {
		return err
	}
	var err error
	if b.r.Controller, err = readMemory(ctx, b.imp.Controller, b.imp.ControllerMetrics); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if b.r.ImporterGateway, err = readMemory(ctx, b.imp.Gateway, b.imp.GatewayMetrics); err != nil {
		return fmt.Errorf("importing gateway: %w", err)
	}
	if b.r.Gateway, err = readMemory(ctx, b.exp.Gateway, b.exp.GatewayMetrics); err != nil {
		return fmt.Errorf("exporting gateway: %w", err)
	}
	// The exporter's controller imports nothing, but it watches every
	// Service and EndpointSlice of its cluster like any controller.
	if b.r.ExporterControllerStopped {
		b.logf("controller %s; importing gateway %s; exporting gateway %s", b.r.Controller, b.r.ImporterGateway, b.r.Gateway)
		return nil
	}
	if b.r.ExporterController, err = readMemory(ctx, b.exp.Controller, b.exp.ControllerMetrics); err != nil {
		return fmt.Errorf("exporting controller: %w", err)
	}
	if b.r.ExporterControllerCPU, err = cpuSeconds(b.exp.Controller.PID()); err != nil {
		return fmt.Errorf("exporting controller: %w", err)
	}
	b.logf("controller %s; importing gateway %s; exporting gateway %s", b.r.Controller, b.r.ImporterGateway, b.r.Gateway)
	return nil
}

// changeLatency changes the target export K times, one at a time, and
// times each until the importer's watch sees its mirror change.
func (b *bench) changeLatency(ctx context.Context) error {
	b.logf("changing %s %d times, one at a time; timing each until the importer's watch sees the mirror change", exportName(b.target), b.cfg.Changes)
	// A feed client of the harness's own splits each sample: how long the
	// exporting side took to put the change on the feed, and the rest,
	// the importer's (its pass, its write, the watch).
	probe, err := startFeedClient(ctx, b.sb, b.exp, b.imp, "bench-latency")
	if err != nil {
		return err
	}
	defer probe.Stop()
	if err := probe.waitExports(ctx, b.cfg.Exports); err != nil {
		return err
	}
	// And a watch of the ServiceExport itself: the API server's share.
	ew, err := watchExport(ctx, b.exp.API.RestConfig, b.exp.API.Client.Scheme(), exportNamespace, exportName(b.target))
	if err != nil {
		return err
	}
	stopProfiles := b.cpuProfiles(ctx, "changes", time.Duration(b.cfg.Changes)*100*time.Millisecond)
	defer stopProfiles()
	cpu0, err := cpuSeconds(b.exp.Gateway.PID())
	if err != nil {
		return err
	}
	var samples, onFeed, seen []time.Duration
	for k := range b.cfg.Changes {
		rev := fmt.Sprintf("a%d", k+1)
		start := time.Now()
		if err := setRev(ctx, b.expClient, b.target, rev); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, changeTimeout)
		at, err := b.mirrors.waitRev(wctx, exportName(b.target), rev)
		cancel()
		if err != nil {
			return fmt.Errorf("change %d: mirror never showed %s=%s: %w", k+1, RevLabel, rev, err)
		}
		samples = append(samples, at.Sub(start))
		wctx, cancel = context.WithTimeout(ctx, changeTimeout)
		fed, err := probe.waitRev(wctx, exportName(b.target), rev)
		cancel()
		if err != nil {
			return fmt.Errorf("change %d: %w", k+1, err)
		}
		onFeed = append(onFeed, fed.Sub(start))
		wctx, cancel = context.WithTimeout(ctx, changeTimeout)
		w, err := ew.waitRev(wctx, rev)
		cancel()
		if err != nil {
			return fmt.Errorf("change %d: %w", k+1, err)
		}
		seen = append(seen, w.Sub(start))
	}
	cpu1, err := cpuSeconds(b.exp.Gateway.PID())
	if err != nil {
		return err
	}
	b.r.ChangeLatency, b.r.FeedLatency, b.r.ExportSeen = summarise(samples), summarise(onFeed), summarise(seen)
	b.r.GatewayCPUPerChange = (cpu1 - cpu0) / float64(b.cfg.Changes)
	b.logf("change latency %s; on the feed %s; the exporter's API server's watch %s", b.r.ChangeLatency, b.r.FeedLatency, b.r.ExportSeen)
	return nil
}

// idleWrites counts the importer's API writes over the idle window, from
// kube-apiserver's metrics and from the controller's.
func (b *bench) idleWrites(ctx context.Context) error {
	b.logf("counting the importer's API writes over an idle window of %s", b.cfg.Idle)
	a0, err := apiWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	c0, f0, err := controllerWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.cfg.Idle):
	}
	a1, err := apiWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	c1, f1, err := controllerWrites(ctx, b.imp)
	if err != nil {
		return err
	}
	perMinute := float64(time.Minute) / float64(time.Since(start))
	b.r.IdleOtherByResource = map[string]float64{}
	for k, v := range diff(a0, a1) {
		v *= perMinute
		if strings.HasSuffix(k, " leases") {
			b.r.IdleLeaseWrites += v
			continue
		}
		b.r.IdleOtherWrites += v
		b.r.IdleOtherByResource[k] = v
	}
	b.r.IdleControllerClientWrites = (c1 - c0) * perMinute
	b.r.IdleControllerFerryWrites = (f1 - f0) * perMinute
	b.logf("idle writes per minute: %.1f lease, %.1f other %v; controller: %.1f client, %.1f Ferry",
		b.r.IdleLeaseWrites, b.r.IdleOtherWrites, b.r.IdleOtherByResource, b.r.IdleControllerClientWrites, b.r.IdleControllerFerryWrites)
	if b.r.ControllerAfterIdle, err = readMemory(ctx, b.imp.Controller, b.imp.ControllerMetrics); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if b.r.Reconciles, err = reconciles(ctx, b.imp); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	b.logf("reconciles so far: %s", b.r.Reconciles)
	return nil
}

// floor writes N mirror-shaped Services and EndpointSlices directly on the
// floor cluster, at the controller's concurrency and rate limits, and times
// it as the import was timed: from the first write until the watch has
// seen them all. That cluster's API server starts as empty as the
// importer's did, and its controller, gateway and CoreDNS watch the
// objects as the importer's watched the mirrors.
func (b *bench) floor(ctx context.Context) error {
	kube, _, err := fastClients(b.floorC)
	if err != nil {
		return err
	}
	obs, err := watchNamespace(ctx, b.floorC.API.Kube, floorNamespace, "")
	if err != nil {
		return err
	}
	defer obs.Stop()
	r := contract.DefaultEgressRange()
	if b.cfg.EgressPorts != "" {
		if r, err = contract.ParseRange(b.cfg.EgressPorts); err != nil {
			return err
		}
	}
	b.logf("API floor: writing %d Services + %d EndpointSlices directly on %s, %d at a time", b.cfg.Exports, b.cfg.Exports, floorName, b.cfg.Concurrency)
	start := time.Now()
	err = forEach(ctx, b.cfg.Exports, b.cfg.Concurrency, func(ctx context.Context, i int) error {
		return createFloorObject(ctx, kube, b.floorC.GatewayPodIP(), i, b.cfg.Ports, r)
	})
	if err != nil {
		return err
	}
	at, err := obs.waitCounts(ctx, b.cfg.Exports, b.cfg.Exports)
	if err != nil {
		return err
	}
	b.r.Floor = at.Sub(start)
	b.r.FloorRatio = b.r.Import.Seconds() / b.r.Floor.Seconds()
	b.logf("API floor %s; import/floor %.2f×", b.r.Floor.Round(time.Millisecond), b.r.FloorRatio)
	return nil
}

// heapProfiles saves the heap profiles of the importing controller and of
// both gateways in cfg.Profiles, if set.
func (b *bench) heapProfiles(ctx context.Context, phase string) error {
	if b.cfg.Profiles == "" {
		return nil
	}
	for _, d := range b.profiled() {
		if err := b.saveProfile(ctx, d.c, d.deployment, "heap", phase, profileSlack); err != nil {
			return err
		}
	}
	return nil
}

// cpuProfiles starts CPU profiles of the importing controller and of both
// gateways, of length d (whole seconds, at most the profile server's
// bound), when cfg.Profiles is set; the returned func waits for them.
func (b *bench) cpuProfiles(ctx context.Context, phase string, d time.Duration) func() {
	if b.cfg.Profiles == "" {
		return func() {}
	}
	secs := min(max(int(d/time.Second), 1), profiling.MaxProfileSeconds)
	var wg sync.WaitGroup
	for _, p := range b.profiled() {
		wg.Go(func() {
			if err := b.saveProfile(ctx, p.c, p.deployment, fmt.Sprintf("profile?seconds=%d", secs), phase, time.Duration(secs)*time.Second+profileSlack); err != nil {
				b.logf("CPU profile of %s %s: %v", p.c.Name, p.deployment, err)
			}
		})
	}
	return wg.Wait
}

type profiledDaemon struct {
	c          *sandbox.Cluster
	deployment string
}

func (b *bench) profiled() []profiledDaemon {
	return []profiledDaemon{{b.imp, contract.ControllerName}, {b.imp, contract.GatewayName}, {b.exp, contract.GatewayName}}
}

// profileSlack bounds a profile fetch beyond the profile's own length: a
// daemon that cannot answer (out of file descriptors, say) must not hang
// the run.
const profileSlack = 30 * time.Second

func (b *bench) saveProfile(ctx context.Context, c *sandbox.Cluster, deployment, query, phase string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	data, err := c.Profile(ctx, deployment, query)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.cfg.Profiles, 0o755); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	kind, _, _ := strings.Cut(query, "?")
	name := filepath.Join(b.cfg.Profiles, fmt.Sprintf("%s-%s-%s-%s.pb.gz", c.Name, deployment, kind, phase))
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	b.logf("saved %s", name)
	return nil
}
