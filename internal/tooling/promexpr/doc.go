// Package promexpr checks PromQL expressions against what daemons export:
// it parses them with Prometheus's own parser, collects the metric names
// they select, and looks those up in /metrics text. The monitoring tests
// (internal/monitoring's unit tests and internal/e2e's scrape of a running
// sandbox) use it; it is test tooling, never linked into a binary, which
// keeps the Prometheus server module out of the CLI.
package promexpr
