package promexpr

import (
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"ferry.dev/ferry/internal/monitoring"
)

// grafanaMacros are the Grafana variables the dashboard's expressions may
// use, with a value of the kind Grafana substitutes, so that the result is
// PromQL. Any other $variable is left alone and fails to parse.
var grafanaMacros = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
)

// Parse expands Grafana's macros and parses expr as PromQL.
func Parse(expr string) (parser.Expr, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaMacros.Replace(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	return e, nil
}

// MetricNames are the metric names expr selects, sorted and unique. A
// selector without a literal metric name ({job="x"}, or a regex on
// __name__) is an error: it could not be checked against what daemons
// export.
func MetricNames(expr string) ([]string, error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" && bad == nil {
			bad = fmt.Errorf("%q: selector %s names no metric", expr, vs)
		}
		if name != "" {
			names = append(names, name)
		}
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// Exported are the series names with at least one sample in Prometheus
// text exposition: a histogram's _bucket, _count and _sum, a summary's
// name, _count and _sum, others' name. A family described (# HELP) but
// without samples is not exported: a query on it returns nothing.
func Exported(texts ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, text := range texts {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
		for name, f := range fams {
			if len(f.GetMetric()) == 0 {
				continue
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				out[name+"_bucket"], out[name+"_count"], out[name+"_sum"] = true, true, true
			case dto.MetricType_SUMMARY:
				out[name], out[name+"_count"], out[name+"_sum"] = true, true, true
			default:
				out[name] = true
			}
		}
	}
	return out, nil
}

// Missing lists, one line each, the metrics that exprs use and the scraped
// texts do not export, with where each is used. It is empty when every
// metric exists.
func Missing(exprs []monitoring.Expression, texts ...string) ([]string, error) {
	have, err := Exported(texts...)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, e := range exprs {
		names, err := MetricNames(e.Expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Where, err)
		}
		for _, n := range names {
			if !have[n] && !slices.Contains(monitoring.Synthesized, n) {
				missing = append(missing, fmt.Sprintf("%s (%s)", n, e.Where))
			}
		}
	}
	return missing, nil
}
