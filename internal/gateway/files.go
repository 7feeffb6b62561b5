package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// Every egress port is a listening socket: two per imported TCP port (its
// mirror's and its clusterset Service's), held as long as the import
// exists, besides one per connection. What a remote exports therefore
// decides how many descriptors this gateway holds, and at 10,000 imports
// a pod with a low open-file limit ran out: with none left, its admin port
// could not accept a probe, so the kubelet would restart a gateway that
// carried every other import well. Limits.FileReserve keeps descriptors
// that egress listeners may not take.

// ErrFileReserve is the error of an egress port refused because listening
// on it would take the descriptors Limits.FileReserve keeps.
var ErrFileReserve = errors.New("refused: the open-file reserve")

// roomForListener refuses one more egress listener when the listeners held
// and the reserve would reach the process's open-file limit. An unknown
// limit refuses nothing (the listen itself then fails, and outOfFiles
// explains it). Call with e.mu held.
func (e *Egress) roomForListener() error {
	limit, ok := openFileLimit()
	if !ok {
		return nil
	}
	held, reserve := uint64(len(e.listeners)), uint64(e.o.Limits.FileReserve)
	if held+reserve < limit {
		return nil
	}
	return fmt.Errorf("%w: the gateway holds %d egress listeners and keeps %d of its open-file limit of %d "+
		"for connections, tunnels and probes (Limits.FileReserve); each imported TCP port takes two: "+
		"raise the container's nofile limit, docs/scale.md", ErrFileReserve, held, reserve, limit)
}

// openFileLimit is the process's soft open-file limit (Go raises it to the
// hard one at start).
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) { // RLIM_INFINITY
		return 0, false
	}
	return rl.Cur, true
}

// outOfFiles explains a listen that failed for want of file descriptors
// all the same (the reserve counts egress listeners only; connections
// take descriptors too).
func outOfFiles(err error, listeners int) string {
	if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
		return ""
	}
	limit := "unknown"
	if l, ok := openFileLimit(); ok {
		limit = strconv.FormatUint(l, 10)
	}
	return fmt.Sprintf(" (the gateway holds %d egress listeners and its open-file limit is %s: each imported TCP port takes two, "+
		"and every connection one more; raise the container's nofile limit, docs/scale.md)", listeners, limit)
}
