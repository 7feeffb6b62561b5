// Package writer is the one write path of Ferry's controllers: they compute
// the desired objects with pure functions, diff them against the cache into
// Ops, and hand the Ops to a Writer. The Writer performs them a bounded
// number at a time, deletes only the object it was given (a UID
// precondition, so a same-named replacement is never deleted), treats a
// delete of something already gone as done, and writes a status subresource
// after the object when asked. Callers observe each write through a hook,
// for their metrics and their own-write bookkeeping.
//
// Blockers is the other half shared by the controllers: which foreign
// objects stand in the way of which owner, so that a blocker's deletion
// wakes exactly the owners it blocked, and which problems were already
// announced, so that each is announced once.
package writer
