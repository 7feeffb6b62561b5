package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/internal/contract"

	dto "github.com/prometheus/client_model/go"
)

// scrapeTimeout bounds one pod's /metrics fetch through the API server.
const scrapeTimeout = 5 * time.Second

// liveFigures are what only the daemons know, read from their /metrics
// through the API server's pod proxy (GET pods/proxy), the way an operator
// reaches a pod's admin port without port-forwarding. Status objects say
// whether a remote is alive; these say how it performs.
type liveFigures struct {
	// tunnels is the live tunnel sessions per remote cluster, summed over
	// the local gateway's pods.
	tunnels map[string]float64
	// streams is the client connections carried per remote cluster since
	// the gateways started.
	streams map[string]float64
	// probes holds each Link's probe-duration histogram, from the
	// controller (only the leader probes).
	probes map[string]*dto.Histogram
	// note says why figures are missing, if they are.
	note string
}

func readLiveFigures(ctx context.Context, k *kubeTarget) liveFigures {
	lf := liveFigures{tunnels: map[string]float64{}, streams: map[string]float64{}, probes: map[string]*dto.Histogram{}}
	cs, err := kubernetes.NewForConfig(k.Config)
	if err != nil {
		lf.note = err.Error()
		return lf
	}
	var notes []string
	gw, err := scrapeComponent(ctx, cs, contract.GatewayName, contract.GatewayAdminPort)
	if err != nil {
		notes = append(notes, "gateway: "+err.Error())
	}
	for _, p := range gw {
		addByLabel(lf.tunnels, p.fams["ferry_gateway_tunnel_sessions"], "remote")
		addByLabel(lf.streams, p.fams["ferry_gateway_egress_streams_opened_total"], "cluster")
	}
	ctrl, err := scrapeComponent(ctx, cs, contract.ControllerName, contract.ControllerAdminPort)
	if err != nil {
		notes = append(notes, "controller: "+err.Error())
	}
	for _, p := range ctrl {
		f := p.fams["ferry_importer_probe_duration_seconds"]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "result") != "ok" || m.GetHistogram() == nil {
				continue
			}
			lf.probes[label(m, "link")] = m.GetHistogram()
		}
	}
	lf.note = strings.Join(notes, "; ")
	return lf
}

// errNoPods: the component has no pods to scrape.
var errNoPods = errors.New("no pods")

// podMetrics is one pod's /metrics.
type podMetrics struct {
	pod string
	// image is the pod's first container's image: what it runs when its
	// metrics do not say.
	image string
	fams  map[string]*dto.MetricFamily
}

// scrapeComponent fetches /metrics from every running pod of a Ferry
// component.
func scrapeComponent(ctx context.Context, cs kubernetes.Interface, component string, port int) ([]podMetrics, error) {
	pods, err := cs.CoreV1().Pods(contract.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + component})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var out []podMetrics
	var failed []string
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
		raw, err := cs.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, strconv.Itoa(port), "metrics", nil).DoRaw(sctx)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", p.Name, firstLine(err.Error())))
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: metrics: %v", p.Name, err))
			continue
		}
		pm := podMetrics{pod: p.Name, fams: fams}
		if len(p.Spec.Containers) > 0 {
			pm.image = p.Spec.Containers[0].Image
		}
		out = append(out, pm)
	}
	switch {
	case len(failed) > 0:
		return out, fmt.Errorf("%s", strings.Join(failed, "; "))
	case len(pods.Items) == 0:
		return nil, errNoPods
	}
	return out, nil
}

func addByLabel(into map[string]float64, f *dto.MetricFamily, name string) {
	for _, m := range f.GetMetric() {
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		into[label(m, name)] += v
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile estimates a quantile from a cumulative histogram by linear
// interpolation inside the bucket, as Prometheus' histogram_quantile does.
func quantile(h *dto.Histogram, q float64) (time.Duration, bool) {
	total := float64(h.GetSampleCount()) // nil-safe, like every proto getter
	if total == 0 {
		return 0, false
	}
	buckets := append([]*dto.Bucket(nil), h.GetBucket()...)
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].GetUpperBound() < buckets[j].GetUpperBound() })
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		count := float64(b.GetCumulativeCount())
		if count >= rank {
			upper := b.GetUpperBound()
			if math.IsInf(upper, 1) {
				return time.Duration(lower * float64(time.Second)), true
			}
			in := count - below
			frac := 1.0
			if in > 0 {
				frac = (rank - below) / in
			}
			return time.Duration((lower + (upper-lower)*frac) * float64(time.Second)), true
		}
		lower, below = b.GetUpperBound(), count
	}
	return time.Duration(lower * float64(time.Second)), true
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// apply fills a remote's live columns.
func (lf liveFigures) apply(r remoteGateway) remoteGateway {
	if v, ok := lf.tunnels[r.Cluster]; ok {
		r.Tunnels = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if v, ok := lf.streams[r.Cluster]; ok {
		r.Streams = strconv.FormatFloat(v, 'f', 0, 64)
	} else if r.Tunnels != "-" {
		r.Streams = "0"
	}
	if h := lf.probes[r.Link]; h != nil {
		if p50, ok := quantile(h, 0.50); ok {
			r.ProbeLatencyP50 = roundLatency(p50)
		}
		if p99, ok := quantile(h, 0.99); ok {
			r.ProbeLatencyP99 = roundLatency(p99)
		}
	}
	return r
}

func roundLatency(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
