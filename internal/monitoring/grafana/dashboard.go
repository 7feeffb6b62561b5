//lint:file-ignore SA1019 The SDK deprecates the classic dashboard model for dashboardv2, but the classic JSON is what every Grafana imports and provisions from a file; v2 needs Grafana 12's v2 API.

package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"ferry.dev/ferry/internal/monitoring"
)

// DashboardPath is where the generated dashboard is committed, relative to
// the repository root.
const DashboardPath = "deploy/grafana/ferry.json"

// DashboardUID is stable, so a re-import replaces the dashboard instead of
// adding a copy.
const DashboardUID = "ferry-overview"

// datasourceVar is the dashboard's one variable: the Prometheus that
// scrapes the cluster to look at. Each cluster runs its own Ferry and
// usually its own Prometheus; a label cannot pick the cluster instead,
// because the gateway's series already use "cluster" for the remote one.
const datasourceVar = "datasource"

var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${" + datasourceVar + "}")}

// A panel is one graph or stat of the dashboard, as data: the expressions
// are all a reader needs to check it against the daemons' series.
type panel struct {
	title, help string
	unit        string
	// stat shows the last value of each series instead of a graph.
	stat bool
	// mapping names a stat's values and colours them.
	mapping []valueText
	queries []query
}

type valueText struct{ value, text, color string }

type query struct{ expr, legend string }

type row struct {
	title  string
	panels []panel
}

// rate is the window of every rate() in the dashboard: Grafana's
// $__rate_interval is at least four scrape intervals, so a graph never
// shows a gap for want of samples.
const rate = "[$__rate_interval]"

// height is every panel's, so the panels of a row line up.
const height = 8

func rows() []row {
	return []row{
		{"Links and imports", []panel{
			{title: "Remote clusters", help: "1 while at least one gateway replica has a live tunnel session to the remote cluster (ferry_gateway_remote_up).",
				stat: true, mapping: []valueText{{"0", "down", "red"}, {"1", "up", "green"}},
				queries: []query{{`max without (instance, pod) (ferry_gateway_remote_up)`, "{{remote}}"}}},
			{title: "Remote gateway health", help: "The importer's verdict on each Link's remote gateway: healthy, unhealthy (mirrors' endpoints not ready) or stale (mirrors withdrawn).",
				stat: true, mapping: []valueText{{"0", "healthy", "green"}, {"1", "unhealthy", "orange"}, {"2", "stale", "red"}},
				queries: []query{{`max without (instance, pod) (ferry_importer_gateway_health)`, "{{link}}"}}},
			{title: "Imported services", help: "Exports mirrored in this cluster, per Link.",
				queries: []query{{`max without (instance, pod) (ferry_importer_imported_services)`, "{{link}}"}}},
		}},
		{"Feed", []panel{
			{title: "Feed lag", help: "Time from a feed update's arrival to the reconcile that applied it.", unit: "s",
				queries: []query{
					{`histogram_quantile(0.99, sum without (instance, pod) (rate(ferry_importer_feed_lag_seconds_bucket` + rate + `)))`, "p99 {{link}}"},
					{`histogram_quantile(0.5, sum without (instance, pod) (rate(ferry_importer_feed_lag_seconds_bucket` + rate + `)))`, "p50 {{link}}"},
				}},
			{title: "Last sync age", help: "Seconds since each Link's feed last delivered anything, heartbeats included (every 10 s): the age of the imported data.", unit: "s",
				queries: []query{{`max without (instance, pod) (ferry_importer_last_sync_age_seconds)`, "{{link}}"}}},
			{title: "Feed updates sent", help: "Snapshots and deltas this cluster's gateways sent to importing clusters.", unit: "ops",
				queries: []query{{`sum without (instance, pod) (rate(ferry_feed_updates_sent_total` + rate + `))`, "{{kind}} to {{cluster}}"}}},
		}},
		{"Probe latency", []panel{
			{title: "Remote gateway probe latency", help: "Round trip of the importer's data-path probes (TCP, TLS handshake, identity check) of each Link's remote gateway.", unit: "s",
				queries: []query{
					{`histogram_quantile(0.99, sum without (instance, pod) (rate(ferry_importer_probe_duration_seconds_bucket{result="ok"}` + rate + `)))`, "p99 {{link}}"},
					{`histogram_quantile(0.5, sum without (instance, pod) (rate(ferry_importer_probe_duration_seconds_bucket{result="ok"}` + rate + `)))`, "p50 {{link}}"},
				}},
			{title: "Failed probes", help: "Probes of each Link's remote gateway that failed.", unit: "ops",
				queries: []query{{`sum without (instance, pod) (rate(ferry_importer_probe_duration_seconds_count{result="error"}` + rate + `))`, "{{link}}"}}},
		}},
		{"Tunnels and streams", []panel{
			{title: "Tunnel sessions", help: "Live mTLS sessions: pooled outbound ones to each remote cluster, and inbound ones from each caller cluster.",
				queries: []query{
					{`sum without (instance, pod) (ferry_gateway_tunnel_sessions)`, "to {{remote}}"},
					{`sum without (instance, pod) (ferry_gateway_tunnel_inbound_sessions)`, "from {{cluster}}"},
				}},
			{title: "Retiring sessions", help: "Sessions retired (at their age, or after a certificate renewal) that still carry streams; a trust rotation waits for 0.",
				queries: []query{{`sum without (instance, pod) (ferry_gateway_tunnel_sessions_retiring)`, "retiring"}}},
			{title: "Streams opened", help: "Client connections carried to each remote cluster (egress) and streams served to each caller cluster (ingress).", unit: "ops",
				queries: []query{
					{`sum without (instance, pod, export) (rate(ferry_gateway_egress_streams_opened_total` + rate + `))`, "egress to {{cluster}}"},
					{`sum without (instance, pod, export) (rate(ferry_gateway_ingress_streams_opened_total` + rate + `))`, "ingress from {{cluster}}"},
				}},
			{title: "Active connections", help: "Connections being relayed now.",
				queries: []query{
					{`sum without (instance, pod) (ferry_gateway_egress_active_connections)`, "egress"},
					{`sum without (instance, pod) (ferry_gateway_ingress_active_streams)`, "ingress"},
				}},
		}},
		{"Bytes and refusals", []panel{
			{title: "Egress bytes", help: "Bytes relayed by egress, to and from each remote cluster.", unit: "Bps",
				queries: []query{{`sum without (instance, pod, export) (rate(ferry_gateway_egress_bytes_total` + rate + `))`, "{{direction}} {{cluster}}"}}},
			{title: "Ingress bytes", help: "Bytes relayed by ingress, to and from local backends, per caller cluster.", unit: "Bps",
				queries: []query{{`sum without (instance, pod, export) (rate(ferry_gateway_ingress_bytes_total` + rate + `))`, "{{direction}} {{cluster}}"}}},
			{title: "Ingress refusals", help: "Connections and streams refused at ingress, by reason (docs/gateway.md lists them); no byte reached a backend.", unit: "ops",
				queries: []query{{`sum without (instance, pod) (rate(ferry_gateway_ingress_rejected_total` + rate + `)) > 0`, "{{reason}}"}}},
			{title: "Egress callers refused", help: "Local callers the egress policy refused: closed (enforce) or only counted (audit).", unit: "ops",
				queries: []query{{`sum without (instance, pod) (rate(ferry_gateway_egress_callers_refused_total` + rate + `)) > 0`, "{{reason}} ({{mode}})"}}},
		}},
		{"Certificates", []panel{
			{title: "Certificate time to expiry", help: "Time left on each certificate: the leaves in use by each gateway and controller replica, and the issuer. Leaves live 24 h and renew at 16 h.", unit: "s",
				queries: []query{{`ferry_certificate_expiry_timestamp_seconds - time()`, "{{cert}} {{instance}}"}}},
			{title: "Renewal failures and refused reloads", help: "Renewals that were due and failed (controller), certificate Secrets a gateway refused, and leaves close to expiry without renewal.",
				queries: []query{
					{`sum without (instance, pod) (increase(ferry_certificate_renewal_failures_total` + rate + `))`, "renewal failures {{cert}}"},
					{`sum without (instance, pod) (increase(ferry_certificate_reload_rejected_total` + rate + `))`, "reloads refused {{cert}}"},
					{`max without (instance, pod) (ferry_certificate_expiring)`, "expiring {{cert}}"},
				}},
		}},
		{"Reconciles and writes", []panel{
			{title: "Importer reconcile errors", help: "Reconciles of a Link that ended in an error (retried with backoff).", unit: "ops",
				queries: []query{{`sum without (instance, pod) (rate(ferry_importer_reconcile_errors_total` + rate + `))`, "{{link}}"}}},
			{title: "API writes", help: "Writes to the local API server by the importer and the clusterset reconciler; idle, both write nothing.", unit: "ops",
				queries: []query{
					{`sum without (instance, pod, reason) (rate(ferry_importer_writes_total` + rate + `))`, "importer {{verb}} {{kind}}"},
					{`sum without (instance, pod) (rate(ferry_clusterset_writes_total` + rate + `))`, "clusterset {{verb}} {{kind}}"},
				}},
			{title: "Reconcile pass duration (p99)", help: "The cost of a reconcile pass: full (every export) or scoped (what changed).", unit: "s",
				queries: []query{
					{`histogram_quantile(0.99, sum without (instance, pod) (rate(ferry_importer_pass_duration_seconds_bucket` + rate + `)))`, "importer {{mode}}"},
					{`histogram_quantile(0.99, sum without (instance, pod) (rate(ferry_clusterset_pass_duration_seconds_bucket` + rate + `)))`, "clusterset {{mode}}"},
				}},
		}},
	}
}

// Dashboard builds the Grafana dashboard.
func Dashboard() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder("Ferry").
		Uid(DashboardUID).
		Description("Ferry's links, feed, tunnels, traffic, certificates and reconciles in one cluster. Generated by `go run ./hack/genmonitoring` (internal/monitoring); do not edit.").
		Tags([]string{"ferry", "multicluster"}).
		Editable().
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder(datasourceVar).
			Label("Cluster (Prometheus)").
			Description("The Prometheus that scrapes the Ferry install of the cluster to show.").
			Type("prometheus"))
	// Grafana identifies panels by id (links, "view panel"): unique, and
	// stable as long as the order is.
	var id uint32
	for _, r := range rows() {
		id++
		b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			b.WithPanel(build(p, id, 24/uint32(len(r.panels))))
		}
	}
	d, err := b.Build()
	if err != nil {
		return d, fmt.Errorf("grafana: dashboard: %w", err)
	}
	return d, nil
}

func build(p panel, id, width uint32) cog.Builder[dashboard.Panel] {
	var targets []cog.Builder[variants.Dataquery]
	for i, q := range p.queries {
		targets = append(targets, prometheus.NewDataqueryBuilder().RefId(string(rune('A'+i))).
			Datasource(datasource).Expr(q.expr).LegendFormat(q.legend))
	}
	if p.stat {
		mappings := dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{}}
		for i, m := range p.mapping {
			mappings.Options[m.value] = dashboard.ValueMappingResult{Text: ptr(m.text), Color: ptr(m.color), Index: ptr(int32(i))}
		}
		return stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.help).Datasource(datasource).
			Span(width).Height(height).Targets(targets).
			Mappings([]dashboard.ValueMapping{{ValueMap: &mappings}}).
			ColorMode(common.BigValueColorModeBackground).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	}
	tb := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.help).Datasource(datasource).
		Span(width).Height(height).Targets(targets).Min(0)
	if p.unit != "" {
		tb.Unit(p.unit)
	}
	return tb
}

// DashboardJSON is the dashboard as committed: indented, ending in a
// newline.
func DashboardJSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	// Expressions hold > and <, which should stay readable in the file.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("grafana: dashboard: %w", err)
	}
	return b.Bytes(), nil
}

func ptr[T any](v T) *T { return &v }

// Expressions are every expression of the alerts and of the built
// dashboard (taken from the dashboard itself, not from the data it is built
// from, so that what is checked is what is shipped).
func Expressions() ([]monitoring.Expression, error) {
	out := monitoring.AlertExpressions()
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for i, t := range p.Panel.Targets {
			q, ok := t.(prometheus.Dataquery)
			if !ok {
				return nil, fmt.Errorf("grafana: panel %q: query %d is a %T, not a Prometheus query", deref(p.Panel.Title), i, t)
			}
			out = append(out, monitoring.Expression{Where: fmt.Sprintf("panel %q", deref(p.Panel.Title)), Expr: q.Expr})
		}
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
