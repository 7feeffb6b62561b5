package monitoring_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/promql/parser"

	"ferry.dev/ferry/internal/monitoring"
	"ferry.dev/ferry/internal/monitoring/grafana"
	"ferry.dev/ferry/internal/tooling/promexpr"
)

const root = "../.."

func expressions(t *testing.T) []monitoring.Expression {
	t.Helper()
	exprs, err := grafana.Expressions()
	if err != nil {
		t.Fatal(err)
	}
	// Alerts and the dashboard's panels are all there.
	var alerts, panels int
	for _, e := range exprs {
		switch {
		case strings.HasPrefix(e.Where, "alert "):
			alerts++
		case strings.HasPrefix(e.Where, "panel "):
			panels++
		}
	}
	if alerts != len(monitoring.Alerts()) || panels < 20 {
		t.Fatalf("%d alert and %d panel expressions: the dashboard's queries were not found", alerts, panels)
	}
	return exprs
}

// TestExpressionsParse parses every expression of the alerts and the
// dashboard with Prometheus's parser and checks that each selects only
// named ferry_ metrics (internal/e2e checks those against live /metrics).
func TestExpressionsParse(t *testing.T) {
	for _, e := range expressions(t) {
		t.Run(e.Where, func(t *testing.T) {
			names, err := promexpr.MetricNames(e.Expr)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) == 0 {
				t.Errorf("%q names no metric", e.Expr)
			}
			for _, n := range names {
				if !strings.HasPrefix(n, "ferry_") && !slices.Contains(monitoring.Synthesized, n) {
					t.Errorf("%q uses %s, which no Ferry daemon exports", e.Expr, n)
				}
			}
		})
	}
}

// TestExpressionsUseMetricsByType checks what a parser cannot: counters
// and histogram series are only read through rate() or increase(), gauges
// never are, and a histogram_quantile's aggregation keeps le.
func TestExpressionsUseMetricsByType(t *testing.T) {
	for _, e := range expressions(t) {
		t.Run(e.Where, func(t *testing.T) {
			for _, err := range typeErrors(t, e.Expr) {
				t.Error(err)
			}
		})
	}
}

func typeErrors(t *testing.T, expr string) []error {
	t.Helper()
	ast, err := promexpr.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	parser.Inspect(ast, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		cumulative := regexp.MustCompile(`_(total|bucket|count|sum)$`).MatchString(vs.Name)
		rated := len(path) >= 2 && isCall(path[len(path)-2], "rate", "increase", "irate")
		if len(path) == 0 {
			path = []parser.Node{vs}
		}
		if _, inMatrix := path[len(path)-1].(*parser.MatrixSelector); inMatrix && !rated {
			errs = append(errs, fmt.Errorf("%s: a range of it is used other than by rate() or increase()", vs.Name))
		}
		switch {
		case cumulative && !rated:
			errs = append(errs, fmt.Errorf("%s is cumulative: read it with rate() or increase()", vs.Name))
		case !cumulative && rated:
			errs = append(errs, fmt.Errorf("%s is a gauge: rate() of it means nothing", vs.Name))
		}
		if strings.HasSuffix(vs.Name, "_bucket") {
			errs = append(errs, quantileErrors(vs.Name, path)...)
		}
		return nil
	})
	return errs
}

// quantileErrors checks that a _bucket series reaches histogram_quantile
// with its le label: every aggregation on the way must keep it.
func quantileErrors(name string, path []parser.Node) []error {
	var errs []error
	quantile := false
	for _, n := range path {
		if isCall(n, "histogram_quantile") {
			quantile = true
		}
		if a, ok := n.(*parser.AggregateExpr); ok && quantile {
			if slices.Contains(a.Grouping, "le") == a.Without {
				errs = append(errs, fmt.Errorf("%s: %s drops le before histogram_quantile", name, a.Op))
			}
		}
	}
	if !quantile {
		errs = append(errs, fmt.Errorf("%s is only meaningful in histogram_quantile()", name))
	}
	return errs
}

func isCall(n parser.Node, names ...string) bool {
	c, ok := n.(*parser.Call)
	return ok && slices.Contains(names, c.Func.Name)
}

// TestTypeChecksCatchMistakes: the checks above can fail.
func TestTypeChecksCatchMistakes(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // in the first error; "" for none
	}{
		{`sum without (instance) (rate(ferry_x_total[5m]))`, ""},
		{`histogram_quantile(0.9, sum without (instance) (rate(ferry_x_bucket[5m])))`, ""},
		{`histogram_quantile(0.9, sum by (le, link) (rate(ferry_x_bucket[5m])))`, ""},
		{`ferry_x_total > 0`, "is cumulative"},
		{`rate(ferry_x_up[5m])`, "is a gauge"},
		{`max_over_time(ferry_x_total[5m])`, "other than by rate()"},
		{`histogram_quantile(0.9, sum without (le) (rate(ferry_x_bucket[5m])))`, "drops le"},
		{`histogram_quantile(0.9, sum by (link) (rate(ferry_x_bucket[5m])))`, "drops le"},
		{`sum(rate(ferry_x_bucket[5m]))`, "only meaningful in histogram_quantile"},
	} {
		errs := typeErrors(t, tc.expr)
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: unexpected %v", tc.expr, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: errors %v, want one with %q", tc.expr, errs, tc.want)
		}
	}
}

// TestAlertsAreComplete checks each rule has what an on-call person needs.
func TestAlertsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range monitoring.Alerts() {
		if !regexp.MustCompile(`^Ferry[A-Z][A-Za-z]+$`).MatchString(a.Name) || seen[a.Name] {
			t.Errorf("alert name %q: want FerryCamelCase, unique", a.Name)
		}
		seen[a.Name] = true
		if a.For <= 0 {
			t.Errorf("%s: no for", a.Name)
		}
		if a.Severity != monitoring.SeverityCritical && a.Severity != monitoring.SeverityWarning {
			t.Errorf("%s: severity %q", a.Name, a.Severity)
		}
		if a.Summary == "" || a.Description == "" || a.Action == "" {
			t.Errorf("%s: summary, description and action are required", a.Name)
		}
	}
}

// TestAlertsCoverTheDocumentedMetrics: every metric that docs/operations.md
// calls worth alerting on has an alert.
func TestAlertsCoverTheDocumentedMetrics(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, monitoring.OperationsDoc))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Metrics worth alerting on")
	section, _, _ = strings.Cut(section, "\n## ")
	documented := regexp.MustCompile("(?m)^\\| `(ferry_[a-z_]+)").FindAllStringSubmatch(section, -1)
	if !ok || len(documented) < 5 {
		t.Fatalf("no metric table under \"Metrics worth alerting on\" in %s", monitoring.OperationsDoc)
	}
	used := map[string]bool{}
	for _, a := range monitoring.Alerts() {
		names, err := promexpr.MetricNames(a.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[strings.TrimSuffix(n, "_bucket")] = true
		}
	}
	for _, m := range documented {
		if !used[m[1]] {
			t.Errorf("%s is worth alerting on (%s) but no alert uses it", m[1], monitoring.OperationsDoc)
		}
	}
}

func TestPrometheusRule(t *testing.T) {
	u := monitoring.PrometheusRule("ferry", "ferry-system", map[string]string{"app.kubernetes.io/part-of": "ferry"})
	if gvk := u.GroupVersionKind(); gvk.Group != "monitoring.coreos.com" || gvk.Version != "v1" || gvk.Kind != "PrometheusRule" {
		t.Errorf("kind %v", gvk)
	}
	groups := u.Object["spec"].(map[string]any)["groups"].([]any)
	rules := groups[0].(map[string]any)["rules"].([]any)
	if len(rules) != len(monitoring.Alerts()) {
		t.Fatalf("%d rules, want %d", len(rules), len(monitoring.Alerts()))
	}
	for i, a := range monitoring.Alerts() {
		r := rules[i].(map[string]any)
		ann := r["annotations"].(map[string]any)
		if r["alert"] != a.Name || r["expr"] != a.Expr || r["for"] == "" || r["for"] == "0s" ||
			r["labels"].(map[string]any)["severity"] != a.Severity || ann["runbook"] != monitoring.Runbook {
			t.Errorf("rule %d is not alert %s: %v", i, a.Name, r)
		}
	}
}

// TestGeneratedFilesUpToDate fails when the committed dashboard or the
// alert table of docs/operations.md is not what the code generates.
func TestGeneratedFilesUpToDate(t *testing.T) {
	dash, err := grafana.DashboardJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, monitoring.OperationsDoc))
	if err != nil {
		t.Fatal(err)
	}
	wantDoc, err := monitoring.SpliceAlertTable(doc)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{grafana.DashboardPath: dash, monitoring.OperationsDoc: wantDoc} {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatalf("%v (run go run ./hack/genmonitoring)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go run ./hack/genmonitoring (-committed +generated):\n%s", path, cmp.Diff(string(got), string(want)))
		}
	}
}
