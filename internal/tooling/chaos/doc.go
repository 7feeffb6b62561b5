// Package chaos runs Ferry's reliability scenarios (docs/reliability.md)
// against a sandbox of three clusters: east and north export echo
// Services, west imports them. Each scenario injects one fault into real
// processes (kill -9, SIGSTOP, a dead remote, a root rotation driven by
// the ferry CLI), measures what the issue's
// pass criterion names, and returns a Row; what a process wrote is counted
// from the API server's audit log, outside the process.
//
// `make chaos` (hack/chaos) runs every scenario at full length and prints
// the table; the package's tests run the short forms in `make test`.
package chaos
