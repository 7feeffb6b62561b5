// Package demo is `make demo` and `make sandbox`: Ferry on three local
// clusters, shown the way a user would meet it. It starts a sandbox
// (internal/tooling/sandbox), then drives it only through the ferry CLI's own
// commands (link, export, links, gateways, check) and ordinary client
// traffic, and prints what happened.
package demo
