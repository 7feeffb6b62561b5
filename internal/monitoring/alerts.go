package monitoring

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Severities, the value of each alert's severity label. Critical pages
// someone: traffic between clusters is failing or is about to. Warning
// opens a ticket: something degrades or will fail if left alone.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// Runbook is where every alert's runbook annotation points: the alert table
// of the operations guide, which says what each alert means and what to do.
const Runbook = "docs/operations.md#alerts"

// RuleGroup is the name of the one rule group.
const RuleGroup = "ferry"

// Alert is one alerting rule.
type Alert struct {
	Name string
	// Expr is PromQL; an alert fires for each series it returns.
	Expr string
	// For is how long Expr must hold before the alert fires, so that a
	// blip (a rollout, one lost scrape) pages no one.
	For      time.Duration
	Severity string
	// Summary and Description are Prometheus templates ({{ $labels.x }}).
	Summary, Description string
	// Action is what to do, for the table in docs/operations.md.
	Action string
}

// Alerts are Ferry's alerting rules, from the metrics docs/operations.md
// names as worth alerting on. Thresholds follow the defaults: leaves live
// 24 h and are renewed at 16 h, the issuer warns 30 days ahead like
// `ferry check`, and the feed sends a heartbeat every 10 s.
func Alerts() []Alert {
	return []Alert{
		{
			Name: "FerryRemoteDown", Severity: SeverityCritical, For: 5 * time.Minute,
			Expr:        `max without (instance, pod) (ferry_gateway_remote_up) == 0`,
			Summary:     `No gateway replica has a tunnel session to cluster {{ $labels.remote }}.`,
			Description: `Connections to the exports of {{ $labels.remote }} fail: the gateways of this cluster have had no live tunnel session to it for 5 minutes.`,
			Action:      "check the remote gateway and the WAN from both sides (`ferry links`, `ferry check`); the tunnel redials by itself",
		},
		{
			Name: "FerryLinkStale", Severity: SeverityCritical, For: time.Minute,
			Expr:        `max without (instance, pod) (ferry_importer_gateway_health) == 2`,
			Summary:     `The imports of Link {{ $labels.link }} are withdrawn.`,
			Description: `The remote gateway of Link {{ $labels.link }} has been unreachable past the Link's staleness limit, so its mirrors were withdrawn.`,
			Action:      "restore the remote gateway or the network; the mirrors return with the feed",
		},
		{
			Name: "FerryLinkGatewayUnhealthy", Severity: SeverityWarning, For: 5 * time.Minute,
			Expr:        `max without (instance, pod) (ferry_importer_gateway_health) == 1`,
			Summary:     `The remote gateway of Link {{ $labels.link }} fails its probes.`,
			Description: `The importer's data-path probes of the remote gateway of Link {{ $labels.link }} fail, so the endpoints of its mirrors are not ready and local clients of its imports get no answer.`,
			Action:      "as for FerryRemoteDown; `ferry gateways` shows the probe latency",
		},
		{
			Name: "FerryFeedSilent", Severity: SeverityWarning, For: 5 * time.Minute,
			Expr:        `ferry_importer_last_sync_age_seconds > 60`,
			Summary:     `The feed of Link {{ $labels.link }} has sent nothing for {{ $value | humanizeDuration }}.`,
			Description: `The feed of Link {{ $labels.link }} has delivered nothing, not even a heartbeat (every 10 s), for over a minute: imports from that cluster are frozen at their last state.`,
			Action:      "`ferry links` (CONNECTED, LAST SYNC); check the remote gateway's feed (`ferry_feed_rejected_total` there)",
		},
		{
			Name: "FerryFeedLagHigh", Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        `histogram_quantile(0.99, sum without (instance, pod) (rate(ferry_importer_feed_lag_seconds_bucket[10m]))) > 5`,
			Summary:     `Feed updates of Link {{ $labels.link }} take {{ $value | humanizeDuration }} to apply (p99).`,
			Description: `The 99th percentile of the time from a feed update's arrival to the reconcile that applied it has been over 5 s for 15 minutes: changes in the remote cluster reach this one late.`,
			Action:      "look for API server latency or reconcile errors in the importing cluster (`ferry_importer_pass_duration_seconds`)",
		},
		{
			Name: "FerryImporterReconcileErrors", Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        `sum without (instance, pod) (rate(ferry_importer_reconcile_errors_total[5m])) > 0`,
			Summary:     `Reconciles of Link {{ $labels.link }} keep failing.`,
			Description: `The importer cannot write what Link {{ $labels.link }} wants (it retries with backoff); imports from that cluster may be missing or out of date.`,
			Action:      "the controller's log (`reconcile link`) and the Link's status say why; often RBAC or a clash with a local Service",
		},
		{
			Name: "FerryIngressRejections", Severity: SeverityWarning, For: 10 * time.Minute,
			Expr:        `sum without (instance, pod) (rate(ferry_gateway_ingress_rejected_total{reason!~"draining|exports_not_synced"}[5m])) > 0.1`,
			Summary:     `The gateway refuses connections or streams: {{ $labels.reason }}.`,
			Description: `Ingress has refused over 6 connections or streams a minute for 10 minutes with reason {{ $labels.reason }}: a hostile or misconfigured caller (docs/gateway.md lists the reasons).`,
			Action:      "the gateway's log names the caller; a misconfigured Link or a stale trust bundle on the calling side is the usual cause",
		},
		{
			Name: "FerryCertificateExpiring", Severity: SeverityCritical, For: 5 * time.Minute,
			Expr:        `max without (instance, pod) (ferry_certificate_expiring) == 1`,
			Summary:     `The {{ $labels.cert }} certificate is close to expiry and was not renewed.`,
			Description: `The {{ $labels.cert }} leaf was due for renewal, renewal failed, and less than a sixth of its life is left: when it expires, tunnels to and from this cluster fail.`,
			Action:      "the controller's Events on the Secret say why; usually the issuer: `ferry identity issuer`, then update Secret `ferry-issuer`",
		},
		{
			Name: "FerryLeafCertificateNearExpiry", Severity: SeverityCritical, For: 10 * time.Minute,
			Expr:        `ferry_certificate_expiry_timestamp_seconds{cert!="issuer"} - time() < 4 * 3600`,
			Summary:     `The {{ $labels.cert }} certificate in use expires in {{ $value | humanizeDuration }}.`,
			Description: `A {{ $labels.cert }} leaf has under 4 hours left, though it is renewed with 8 hours to go: renewal has been failing for at least 4 hours. On a gateway it means the renewed Secret was not loaded (see ferry_certificate_reload_rejected_total).`,
			Action:      "as for FerryCertificateExpiring; on a gateway, its log says why the Secret was refused",
		},
		{
			Name: "FerryCertificateRenewalFailing", Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        `sum without (instance, pod) (rate(ferry_certificate_renewal_failures_total[15m])) > 0`,
			Summary:     `Renewals of the {{ $labels.cert }} certificate fail.`,
			Description: `The controller has failed to renew the {{ $labels.cert }} leaf for 15 minutes; it is still valid, and FerryCertificateExpiring fires when a sixth of its life is left.`,
			Action:      "as for FerryCertificateExpiring",
		},
		{
			Name: "FerryCertificateReloadRejected", Severity: SeverityWarning, For: time.Minute,
			Expr:        `increase(ferry_certificate_reload_rejected_total[15m]) > 0`,
			Summary:     `A gateway refused a new version of its certificate Secret.`,
			Description: `A gateway refused a version of its certificate Secret (malformed, untrusted or the wrong identity) and keeps serving the previous certificate, which will expire.`,
			Action:      "the gateway's log says why; `ferry check` (gateway certificate)",
		},
		{
			Name: "FerryTargetDown", Severity: SeverityWarning, For: 5 * time.Minute,
			Expr:        `up{job="` + ScrapeJob + `"} == 0`,
			Summary:     `Prometheus cannot scrape {{ $labels.pod }}.`,
			Description: `The admin port of {{ $labels.pod }} has not answered Prometheus for 5 minutes: the daemon is down, restarting or unreachable, and its own alerts cannot fire.`,
			Action:      "`kubectl -n ferry-system get pods` and the pod's events and log; `ferry check`",
		},
		{
			Name: "FerryNotScraped", Severity: SeverityWarning, For: 15 * time.Minute,
			Expr:        `absent(up{job="` + ScrapeJob + `"})`,
			Summary:     `Prometheus scrapes no Ferry daemon.`,
			Description: `No target of the PodMonitor ` + ScrapeJob + ` exists: the PodMonitor is missing or not selected by this Prometheus (its podMonitorSelector), so every other Ferry alert is silent.`,
			Action:      "render the install with --alerts (it adds the PodMonitor), and label it for your Prometheus's podMonitorSelector",
		},
		{
			Name: "FerryIssuerNearExpiry", Severity: SeverityWarning, For: time.Hour,
			Expr:        `ferry_certificate_expiry_timestamp_seconds{cert="issuer"} - time() < 30 * 86400`,
			Summary:     `The cluster's issuer expires in {{ $value | humanizeDuration }}.`,
			Description: `The issuer signs every leaf of this cluster; when it expires no leaf can be renewed.`,
			Action:      "`ferry identity issuer --cluster NAME` with the mesh root, then update Secret `ferry-issuer` (picked up live)",
		},
	}
}

// ScrapeJob is the job label prometheus-operator gives the targets of
// PodMonitor's object (<namespace>/<name>), which the alerts on the scrape
// itself select.
const ScrapeJob = "ferry-system/ferry"

// Synthesized are the series Prometheus writes for each target itself,
// which no daemon's /metrics holds; the checks that look metrics up in
// /metrics skip them.
var Synthesized = []string{"up"}

// PodMonitor makes a prometheus-operator Prometheus scrape both daemons'
// admin ports (port "admin", /metrics), so that the alerts have series to
// judge. Its name and namespace make ScrapeJob.
func PodMonitor(name, namespace string, labels, podLabels map[string]string) *unstructured.Unstructured {
	match := map[string]any{}
	for k, v := range podLabels {
		match[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PodMonitor",
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": match},
			"podMetricsEndpoints": []any{map[string]any{
				"port": "admin", "path": "/metrics", "interval": "30s",
			}},
		},
	}}
	u.SetName(name)
	u.SetNamespace(namespace)
	u.SetLabels(labels)
	return u
}

// PrometheusRule renders the alerts as a prometheus-operator
// monitoring.coreos.com/v1 PrometheusRule. It is unstructured so that Ferry
// needs no prometheus-operator module for one object.
func PrometheusRule(name, namespace string, labels map[string]string) *unstructured.Unstructured {
	var rules []any
	for _, a := range Alerts() {
		rules = append(rules, map[string]any{
			"alert": a.Name,
			"expr":  a.Expr,
			"for":   model.Duration(a.For).String(),
			"labels": map[string]any{
				"severity": a.Severity,
			},
			"annotations": map[string]any{
				"summary":     a.Summary,
				"description": a.Description,
				"runbook":     Runbook,
			},
		})
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"spec": map[string]any{
			"groups": []any{map[string]any{"name": RuleGroup, "rules": rules}},
		},
	}}
	u.SetName(name)
	u.SetNamespace(namespace)
	u.SetLabels(labels)
	return u
}

// AlertTable is the Markdown table of the alerts for docs/operations.md.
func AlertTable() string {
	var b strings.Builder
	b.WriteString("| alert | severity | for | fires when | what to do |\n|---|---|---|---|---|\n")
	for _, a := range Alerts() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", a.Name, a.Severity, model.Duration(a.For),
			strings.ReplaceAll(a.Expr, "|", `\|`), a.Action)
	}
	return b.String()
}

// Expression is one PromQL expression of the alerts or the dashboard, and
// where it is used, for the checks that parse them and look their metrics
// up in live /metrics.
type Expression struct{ Where, Expr string }

// AlertExpressions are the alerts' expressions.
func AlertExpressions() []Expression {
	var out []Expression
	for _, a := range Alerts() {
		out = append(out, Expression{Where: "alert " + a.Name, Expr: a.Expr})
	}
	return out
}
