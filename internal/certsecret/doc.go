// Package certsecret keeps a process's TLS identity in step with one
// Kubernetes Secret.
//
// The controller writes the gateway's leaf certificate into the Secret
// ferry-gateway-tls (tls.crt chain, tls.key, ca.crt trust bundle); the gateway
// watches it through the API rather than through a mounted volume, so
// rotation works without a kubelet and takes effect on the next handshake.
//
// Watcher follows exactly one Secret by name. It lists and watches with the
// field selector metadata.name=<name>, which is what lets RBAC restrict both
// verbs to that one Secret with resourceNames: the API server authorizes a
// list or watch by name only when the request carries that selector. Loader
// builds on a Watcher and swaps each valid version of the Secret into an
// *identity.Source. An invalid version is refused and logged, and the
// previous good certificate keeps serving: bad input never costs the gateway
// its identity.
package certsecret
