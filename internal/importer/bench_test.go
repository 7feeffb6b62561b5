package importer_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/importer"
)

// The benchmarks run the importer in this process against the package's
// real API server (etcd + kube-apiserver are separate processes).
//
//	go test ./internal/importer -run '^$' -bench . -benchtime 3x
//
// docs/benchmarks.md ("Importer") has the figures.

func BenchmarkInitialImport1k(b *testing.B)  { benchInitialImport(b, 1000) }
func BenchmarkInitialImport10k(b *testing.B) { benchInitialImport(b, 10000) }

// benchInitialImport measures a new Link with n exports until its status
// says all n are mirrored (every object written, no error).
func benchInitialImport(b *testing.B, n int) {
	ns := fmt.Sprintf("bench-import-%d", n)
	if err := west.EnsureNamespace(ctxT(b), ns); err != nil {
		b.Fatal(err)
	}
	feed := newFakeFeed(manyExports(ns, n)...)
	h := startImporter(b, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		link := fmt.Sprintf("import-%d-%d", n, i)
		start := time.Now()
		createLink(b, newLink(link, "east-gw:4143"))
		waitImported(b, link, int32(n))
		total += time.Since(start)
		b.StopTimer()
		reportMemory(b)
		w := h.writes.Snapshot()
		b.ReportMetric(float64(w["create Service"]+w["create EndpointSlice"]), "creates")
		b.Logf("%d exports imported in %s; writes %v", n, time.Since(start).Round(time.Millisecond), w)
		deleteLinkWithin(b, link, 10*time.Minute)
		b.StartTimer()
	}
}

func waitImported(tb testing.TB, link string, n int32) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var l ferryv1.Link
		if err := west.Client.Get(ctxT(tb), types.NamespacedName{Namespace: contract.SystemNamespace, Name: link}, &l); err == nil && l.Status.ImportedServices == n &&
			condition(&l, ferryv1.LinkSynced).Status == metav1.ConditionTrue {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("link %s: %d exports not imported in time", link, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkChangeLatency1k: with 1k exports imported, the time from a feed
// update to the mirror Service showing it, as a watch on west sees it.
// Iterations alternate a changed port and a new export. Only the changed
// export is recomputed (a scoped pass), so 10k imported should cost what
// 1k does.
func BenchmarkChangeLatency1k(b *testing.B)  { benchChangeLatency(b, 1000) }
func BenchmarkChangeLatency10k(b *testing.B) { benchChangeLatency(b, 10000) }

func benchChangeLatency(b *testing.B, n int) {
	ns := fmt.Sprintf("bench-latency-%d", n)
	if err := west.EnsureNamespace(ctxT(b), ns); err != nil {
		b.Fatal(err)
	}
	feed := newFakeFeed(manyExports(ns, n)...)
	h := startImporter(b, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(b, newLink("latency", "east-gw:4143"))
	b.Cleanup(func() { deleteLinkWithin(b, "latency", 10*time.Minute) })
	waitImported(b, "latency", int32(n))
	before := h.writes.Snapshot()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := west.Kube.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{LabelSelector: contract.LabelLink + "=latency"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	seen := make(chan string, 1024)
	go func() {
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Service); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				seen <- s.Name + ":" + strconv.Itoa(int(s.Spec.Ports[0].Port))
			}
		}
	}()

	var lat []time.Duration
	added := 0
	for i := 0; b.Loop(); i++ {
		port := int32(10000 + i%50000)
		var svc string
		if i%2 == 0 {
			svc = fmt.Sprintf("svc-%04d", (i/2)%n)
		} else {
			svc = fmt.Sprintf("new-%05d", added)
			added++
		}
		want := svc + "-east:" + strconv.Itoa(int(port))
		start := time.Now()
		feed.Set(export(ns, svc, port))
		timeout := time.After(30 * time.Second)
	wait:
		for {
			select {
			case got := <-seen:
				if got == want {
					break wait
				}
			case <-timeout:
				b.Fatalf("%s never reached the mirror", want)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("writes during %d changes: %v", len(lat), h.writes.Since(before))
	reportMemory(b)
}

// reportMemory reports this process's RSS (the importer, its caches, the
// test's clients) and the Go heap in use.
func reportMemory(b *testing.B) {
	runtime.GC()
	if path := os.Getenv("FERRY_HEAP_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.Logf("heap in use %.1f MiB", float64(ms.HeapInuse)/(1<<20))
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				b.ReportMetric(float64(kb)/1024, "rss-MiB")
				b.Logf("RSS %.1f MiB", float64(kb)/1024)
			}
		}
	}
}

// BenchmarkAPIFloor1k is the floor under BenchmarkInitialImport1k: the
// same 2k objects (1k Services, 1k EndpointSlices) created directly with
// client-go at the importer's write concurrency, no controller involved.
// The difference between the two is the importer's own cost.
func BenchmarkAPIFloor1k(b *testing.B) {
	const n = 1000
	ns := "bench-floor"
	if err := west.EnsureNamespace(ctxT(b), ns); err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(west.RestConfig)
	cfg.QPS, cfg.Burst = importer.DefaultQPS, importer.DefaultBurst
	kc := kubernetes.NewForConfigOrDie(cfg)
	run := func(f func(i int) error) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, importer.DefaultWriteConcurrency)
		for i := range n {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := f(i); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	for b.Loop() {
		run(func(i int) error {
			name := fmt.Sprintf("floor-%04d", i)
			_, err := kc.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(41000)}}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			_, err = kc.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: name},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: gatewayIPs[:1]}, {Addresses: gatewayIPs[1:]}},
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](41000)}},
			}, metav1.CreateOptions{})
			return err
		})
		b.StopTimer()
		run(func(i int) error {
			name := fmt.Sprintf("floor-%04d", i)
			if err := kc.DiscoveryV1().EndpointSlices(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
				return err
			}
			return kc.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
		b.StartTimer()
	}
}
