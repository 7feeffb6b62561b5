// Package fence stops a leader's writes before its lease can pass to
// another replica (docs/security.md, finding 8).
//
// Leader election on a Lease is advisory: a replica that stalls (a long GC
// pause, SIGSTOP, a frozen VM) keeps believing it leads after another
// replica has taken over, and the writes it had in hand land late. The fence
// closes writes RenewDeadline after the last renewal that succeeded, which
// is before the lease can expire for anyone else (LeaseDuration), and opens
// again only with a fresh renewal. It sits in the HTTP transport, so it
// covers every writer of the process (importer, clusterset, status, issuer)
// without any of them knowing; reads, the Lease itself and Events pass.
//
// A write that passed the fence before a stall can still land late. Ferry's
// writes are built for that: updates carry the resourceVersion they were
// computed from, deletes their UID and resourceVersion, port claims are
// guarded by their shard's resourceVersion (internal/claims), and a mirror
// created late routes nothing without a claim.
package fence
