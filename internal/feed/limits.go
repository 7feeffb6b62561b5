package feed

import (
	"fmt"
	"time"
)

// Named limits and defaults. Every option that is zero takes its default;
// zero never means "unlimited", so a forgotten field cannot remove a bound.
const (
	// DefaultMaxMessageBytes bounds one server message. Snapshots and deltas
	// larger than this are chunked; one export is far smaller (see the
	// limits in package exports), so chunking always succeeds.
	DefaultMaxMessageBytes = 1 << 20
	// MaxClientMessageBytes bounds what a client may send: a Subscribe or a
	// Heartbeat is a few bytes, so anything large is hostile.
	MaxClientMessageBytes = 4 << 10
	// DefaultMaxHistory bounds the journal: how many per-export changes the
	// server keeps so that a reconnecting client gets only what it missed.
	// A client further behind gets a snapshot. About 10k entries are a few
	// MB at worst, as entries share the exports themselves.
	DefaultMaxHistory = 10000
	// DefaultHeartbeatInterval is how often each side sends a heartbeat on
	// an otherwise idle stream.
	DefaultHeartbeatInterval = 10 * time.Second
	// DefaultHeartbeatTimeout is how long a side waits for any message
	// before declaring the stream dead: three missed heartbeats.
	DefaultHeartbeatTimeout = 30 * time.Second
	// DefaultMaxSubscribers bounds concurrent feed streams on one server.
	DefaultMaxSubscribers = 256
	// DefaultMaxStreamsPerCluster bounds concurrent streams from one
	// importing cluster: one per controller replica plus reconnect overlap.
	DefaultMaxStreamsPerCluster = 4
	// MaxStreamsPerConn bounds concurrent gRPC streams on one connection.
	MaxStreamsPerConn = 4
	// DefaultMaxExports bounds how many exports a client accepts in one
	// update (a snapshot's chunks together), so a faulty server cannot make
	// an importer grow without bound.
	DefaultMaxExports = 200000
	// DefaultMaxUpdateBytes bounds the wire size of one update a client
	// reassembles (proto.Size of its chunks together). MaxExports alone
	// does not bound memory, as one export may be close to a message; a
	// typical export is about 200 bytes, so this admits about 300k of
	// them, and the entry limit usually binds first. A server whose
	// snapshot exceeds it is refused on every attempt: raise the limit.
	DefaultMaxUpdateBytes = 64 << 20
	// DefaultDialTimeout bounds connecting to one address.
	DefaultDialTimeout = 10 * time.Second
	// DefaultBackoffInitial and DefaultBackoffMax bound the client's
	// exponential reconnect backoff (with jitter).
	DefaultBackoffInitial = 250 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	// maxClusterLabels bounds the distinct cluster label values in metrics;
	// further clusters are counted as "other".
	maxClusterLabels = 64
	// chunkHeadroom is what an Update costs beyond its exports and keys.
	chunkHeadroom = 64
	// chunkBytes is the size the server fills a message to before it
	// starts the next one of the same update. gRPC encodes each message
	// into a buffer from a pool of 256 B, 4, 16 and 32 KiB and 1 MiB
	// buffers (grpc/mem), so a message a little over 32 KiB takes a whole
	// MiB: at 9,500 exports and 50 importers subscribing at once, 64 KiB
	// messages kept 87 MB of those buffers in the gateway. Just under 32
	// KiB (the Update's own fields take the rest), a message is about 300
	// exports, and its framing is still noise.
	chunkBytes = 32<<10 - 256
)

// positive refuses a limit below zero: zero takes the default, a negative
// value is a mistake.
func positive(limits ...int) error {
	for _, v := range limits {
		if v < 0 {
			return fmt.Errorf("feed: a limit is %d; limits must not be negative (zero means the default)", v)
		}
	}
	return nil
}

// MaxConnectionIdle closes a feed connection that has carried no stream for
// this long (a subscribed importer always has one open).
const MaxConnectionIdle = 2 * time.Minute
