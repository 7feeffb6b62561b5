package scalebench

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"ferry.dev/ferry/internal/tooling/sandbox"
)

// writeVerbs are apiserver_request_total's verbs that write.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "DELETECOLLECTION": true, "APPLY": true}

// apiWrites counts the writes an API server has served, by
// "VERB resource[/subresource]", from its own apiserver_request_total. It
// counts every client: the controller, the gateway, CoreDNS (which only
// reads) and the API server's own identity lease in kube-system.
func apiWrites(ctx context.Context, c *sandbox.Cluster) (map[string]float64, error) {
	raw, err := c.API.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver /metrics: %w", err)
	}
	out := map[string]float64{}
	f, ok := fams["apiserver_request_total"]
	if !ok {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if !writeVerbs[l["verb"]] {
			continue
		}
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		out[l["verb"]+" "+res] += m.GetCounter().GetValue()
	}
	return out, nil
}

// controllerWrites reads the controller's own write counters: client-go's
// rest_client_requests_total for write methods (every request, the leader
// lease's included) and Ferry's ferry_importer_writes_total.
func controllerWrites(ctx context.Context, c *sandbox.Cluster) (client, ferry float64, err error) {
	text, err := c.ControllerMetrics(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("controller /metrics: %w", err)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		v, err := sandbox.MetricSum(text, "rest_client_requests_total", map[string]string{"method": m})
		if err != nil {
			return 0, 0, err
		}
		client += v
	}
	ferry, err = sandbox.MetricSum(text, "ferry_importer_writes_total", nil)
	return client, ferry, err
}

// diff returns after − before per key, dropping zeros.
func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// reconciles reads the importing controller's reconcile counts and errors
// per controller (controller-runtime's metrics): a reconciler that fails
// and backs off shows here before it shows anywhere else.
func reconciles(ctx context.Context, c *sandbox.Cluster) (string, error) {
	text, err := c.ControllerMetrics(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, name := range []string{"ferry-importer", "ferry-clusterset"} {
		total, err := sandbox.MetricSum(text, "controller_runtime_reconcile_total", map[string]string{"controller": name})
		if err != nil {
			return "", err
		}
		errs, err := sandbox.MetricSum(text, "controller_runtime_reconcile_errors_total", map[string]string{"controller": name})
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %.0f (%.0f errors)", name, total, errs))
	}
	return strings.Join(parts, ", "), nil
}
