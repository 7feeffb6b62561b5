// Package grafana builds Ferry's Grafana dashboard with the Grafana
// Foundation SDK, from data rather than hand-written JSON, and lists its
// expressions (with the alerts') for the checks in internal/monitoring and
// internal/e2e. It is apart from internal/monitoring so that the CLI, which
// renders the alerts for `ferry install --alerts`, does not link the SDK.
package grafana
