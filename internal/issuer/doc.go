// Package issuer is the controller's certificate authority at work: it
// loads the cluster's issuer (intermediate CA and trust bundle) from the
// Secret ferry-issuer, keeps the gateway's leaf in the Secret
// ferry-gateway-tls, and keeps the controller's own leaf in memory.
//
// Everything is level-based. Each pass, triggered by a change to either
// Secret, a timer or winning the leader election, looks at the current
// Secrets and the current time and decides from them alone what, if
// anything, to write: a restart with valid Secrets in place writes nothing,
// and a pass that finds nothing to do is free. A leaf is reissued at two
// thirds of its life (identity.RenewalTime), or at once if it is unreadable,
// names the wrong identity, or was signed by an issuer other than the
// current one.
//
// Every controller replica holds its own controller leaf, because every
// replica may be asked for it (the importer's feed client). Only the
// elected leader writes the gateway Secret, so the component does not need
// leader election itself and instead waits on the manager's Elected channel
// before writing.
//
// A leaf that is due but cannot be renewed (the issuer Secret is missing or
// invalid, or the API refuses the write) is reported three ways: metrics
// (ferry_certificate_*), Kubernetes Events on the Secret concerned, and a
// condition in the annotation ferry.dev/condition-renewed on the gateway
// Secret. docs/identity.md describes them. Private keys are never logged and
// never put in an Event.
package issuer
