// Package profiling serves Go's runtime profiles (net/http/pprof) for
// ferry-controller and ferry-gateway behind their --pprof-addr flag.
//
// It is off unless the flag is set, and never on the admin port: the admin
// port is what a Service and a scraper reach, while a profile shows every
// goroutine's stack and can hold a CPU for as long as it is asked to. Bind
// it to 127.0.0.1 and reach it with kubectl port-forward.
package profiling
