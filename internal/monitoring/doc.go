// Package monitoring is what Ferry gives an operator's Prometheus: the
// alerting rules (Alerts, rendered as a prometheus-operator PrometheusRule
// by PrometheusRule). The Grafana dashboard is built in the subpackage
// grafana, with the Grafana Foundation SDK rather than written as JSON.
//
// Both are data defined once here. `ferry install --alerts` and the chart's
// alerts.enabled value render the same rules (internal/install);
// `go run ./hack/genmonitoring` writes the dashboard to DashboardPath and the
// alert table of docs/operations.md, and the tests fail while either is
// stale. Every expression names only series the daemons export: the unit
// tests parse each one with Prometheus's own parser, and an e2e test
// (internal/e2e, TestMonitoringMetricsExist) looks each metric up in the
// /metrics of a running sandbox.
//
// Series are aggregated "without (instance, pod)" rather than "by" a list,
// so the labels a scrape adds (job, namespace, a cluster external label)
// survive into the alert and the legend.
package monitoring
