// Package netns builds the hierarchical network that requirement I is tested
// on: one Linux network namespace per cluster, holding that cluster's
// workloads and gateway, and a WAN bridge (in a namespace of its own) that
// only the gateways are attached to. Pods of one cluster therefore have no
// route to pods or the API server of another; only gateway addresses cross.
//
// Addresses come from 198.18.0.0/15, the benchmarking range: cluster i's pods
// are 198.18.i.0/24 (all local to its namespace) and its gateway's WAN address
// is 198.19.0.(10+i). Nothing is added to the host's own network namespace.
//
// Code can run inside a namespace from the test process: a socket belongs to
// the namespace it was created in, so Listen and Dial create it on an OS thread
// switched into the namespace and then hand it back to ordinary goroutines.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Tests call RequireRoot,
// which fails loudly without it unless FERRY_SKIP_NETNS=1 opts out.
package netns
