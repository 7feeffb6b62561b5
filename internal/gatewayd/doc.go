// Package gatewayd runs ferry-gateway against a cluster: it watches the
// cluster's API server (exports, endpoints, mirror Services, Links and the
// gateway's certificate Secret) and feeds what it sees into the
// Kubernetes-free gateway core (internal/gateway, internal/tunnel) and the
// export feed (internal/feed). The translation from objects to routes and
// remotes is done by pure functions (routes.go) over the readers that sit
// beside the objects' writers (mirror.Read, clusterset.Read). Who may use
// an egress port is decided by the core's CallerPolicy, implemented here
// (callers.go) from the cluster's pods and Namespaces by a pure rule
// (decide).
package gatewayd
