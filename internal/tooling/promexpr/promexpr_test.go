package promexpr

import (
	"slices"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/monitoring"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `max without (pod) (ferry_a) == 0`, want: []string{"ferry_a"}},
		{expr: `histogram_quantile(0.99, sum without (pod) (rate(ferry_b_bucket[$__rate_interval])))`, want: []string{"ferry_b_bucket"}},
		{expr: `ferry_c - time() < 4 * 3600 or {__name__="ferry_d"} or ferry_c`, want: []string{"ferry_c", "ferry_d"}},
		{expr: `sum(rate(ferry_e_total[5m])) / sum(increase(ferry_f_count[$__range]))`, want: []string{"ferry_e_total", "ferry_f_count"}},
		{expr: `rate(ferry_e_total[$window])`, wantErr: "parse"},
		{expr: `sum(rate(ferry_e_total[5m])`, wantErr: "parse"},
		{expr: `{job="ferry"}`, wantErr: "names no metric"},
		{expr: `{__name__=~"ferry_.*"}`, wantErr: "names no metric"},
	} {
		got, err := MetricNames(tc.expr)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want %q", tc.expr, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case !slices.Equal(got, tc.want):
			t.Errorf("%s: names %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// exposition is what a daemon's /metrics looks like: a histogram, a
// counter, a gauge, and a vector described but with no child yet (which
// client_golang does not even write, and a query would not find).
const exposition = `# HELP ferry_lag_seconds Lag.
# TYPE ferry_lag_seconds histogram
ferry_lag_seconds_bucket{link="east",le="1"} 1
ferry_lag_seconds_bucket{link="east",le="+Inf"} 1
ferry_lag_seconds_sum{link="east"} 0.1
ferry_lag_seconds_count{link="east"} 1
# HELP ferry_writes_total Writes.
# TYPE ferry_writes_total counter
ferry_writes_total{kind="Service"} 3
# HELP ferry_up Up.
# TYPE ferry_up gauge
ferry_up{remote="east"} 1
# HELP ferry_rejected_total Rejected.
# TYPE ferry_rejected_total counter
`

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.5, sum without (pod) (rate(ferry_lag_seconds_bucket[5m])))`, nil},
		{`rate(ferry_lag_seconds_count[5m]) + rate(ferry_writes_total[5m]) + ferry_up`, nil},
		{`max(ferry_up) + rate(ferry_write_total[5m])`, []string{"ferry_write_total (x)"}}, // misspelt
		{`rate(ferry_lag_seconds[5m])`, []string{"ferry_lag_seconds (x)"}},                 // a histogram has no such series
		{`rate(ferry_rejected_total[5m])`, []string{"ferry_rejected_total (x)"}},           // described, never counted
	} {
		got, err := Missing([]monitoring.Expression{{Where: "x", Expr: tc.expr}}, exposition)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: missing %v, want %v", tc.expr, got, tc.want)
		}
	}
}
