package tunnel

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// yamux's frame header (the yamux spec; libp2p/go-yamux, pinned in go.mod): version, type,
// flags (2), stream ID (4), length (4). A data frame's length is that of
// the body written after it; the other types carry no body.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// MaxBatch bounds the bytes a session's writer holds before yamux's next
// write waits for the flusher: at most this (plus one frame larger than it)
// per session, never per stream. Four full TLS records.
const MaxBatch = 64 << 10

// batchBufCap is a batch buffer's capacity: a full batch and the frame that
// crossed it (a splice writes at most largeBuf at once).
const batchBufCap = MaxBatch + largeBuf + yamuxHeaderSize

// batchBuf is pooled by pointer, so that taking and returning one
// allocates nothing.
type batchBuf struct{ b []byte }

// batchBufs hold a busy session's batches: two per session while it
// writes (one held, one being written), none while it is idle.
var batchBufs = sync.Pool{New: func() any { return &batchBuf{b: make([]byte, 0, batchBufCap)} }}

func getBatchBuf() *batchBuf {
	bb := batchBufs.Get().(*batchBuf)
	bb.b = bb.b[:0]
	return bb
}

// putBatchBuf returns bb unless a frame larger than a batch grew it.
func putBatchBuf(bb *batchBuf) {
	if cap(bb.b) == batchBufCap {
		batchBufs.Put(bb)
	}
}

// CloseFlushTimeout bounds how long Close waits for held frames to reach
// the peer before it closes the connection anyway. Short: a session is
// closed after its drain (the GoAway went out long before), or because the
// peer is gone, when waiting longer only delays the next session's close.
const CloseFlushTimeout = 100 * time.Millisecond

// batchWriter sits between a yamux session and its TLS connection. yamux
// writes each frame's header and body as two Writes, and every Write to a
// *tls.Conn is at least one TLS record and one syscall, so a 128-byte
// request cost two records and two syscalls, and a busy session many small
// ones. batchWriter hands yamux's writes to one flusher goroutine instead,
// which writes whatever has accumulated, cut at a frame boundary, as one
// tls.Conn.Write: a header and its body always share a record, and the
// frames of many streams share records while the session is busy. An idle
// session pays one goroutine handoff per frame and no added delay.
//
// A Write returns once its bytes are held, as a kernel socket buffer
// accepts bytes before they are sent; the flusher's first error fails every
// later Write, and yamux then closes the session. A peer that stops reading
// fills the batch, and yamux's own ConnectionWriteTimeout then fires on the
// blocked Write, as it did on the blocked socket.
type batchWriter struct {
	// conn is the connection; its reads, addresses and deadlines are
	// batchWriter's own. A write deadline (yamux sets one per frame) bounds
	// the flusher's writes, so a peer that stops reading fails the next
	// Write within it.
	net.Conn

	mu      sync.Mutex
	cond    *sync.Cond
	pending *batchBuf // held bytes, in order; nil when none
	// cut is how many of pending end on a frame boundary: the flusher
	// takes only those, so a header never leaves without its body.
	cut    int
	parse  frameParser
	err    error // the first write error; sticky
	closed bool
	// writing: the flusher is in conn.Write with a batch.
	writing bool
	done    chan struct{} // closed when the flusher returns
}

func newBatchWriter(conn net.Conn) *batchWriter {
	w := &batchWriter{Conn: conn, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.flush()
	return w
}

func (w *batchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Wait for room only while the flusher has something it may take: a
	// held header must get its body, however large, or neither moves.
	for w.err == nil && !w.closed && w.cut > 0 && len(w.pending.b)+len(p) > MaxBatch {
		w.cond.Wait()
	}
	switch {
	case w.err != nil:
		return 0, w.err
	case w.closed:
		return 0, net.ErrClosed
	}
	if w.pending == nil {
		w.pending = getBatchBuf()
	}
	w.pending.b = append(w.pending.b, p...)
	if w.parse.feed(p) {
		w.cut = len(w.pending.b)
		w.cond.Broadcast()
	}
	return len(p), nil
}

// flush writes the held bytes up to the last frame boundary, one batch at
// a time, until Close; after Close it writes what is complete and returns.
func (w *batchWriter) flush() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for w.cut == 0 && !w.closed {
			w.cond.Wait()
		}
		n := w.cut
		if n == 0 {
			// Closed with nothing complete held; a header whose body
			// never came is dropped with the connection.
			if w.pending != nil {
				putBatchBuf(w.pending)
				w.pending = nil
			}
			w.mu.Unlock()
			return
		}
		batch := w.pending
		w.pending, w.cut = nil, 0
		if n < len(batch.b) {
			// The start of a frame follows the cut: it stays held.
			w.pending = getBatchBuf()
			w.pending.b = append(w.pending.b, batch.b[n:]...)
		}
		w.writing = true
		w.cond.Broadcast() // room for a waiting Write
		w.mu.Unlock()

		_, err := w.Conn.Write(batch.b[:n])

		w.mu.Lock()
		w.writing = false
		putBatchBuf(batch)
		if err != nil {
			w.err = err
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
	}
}

// Close lets the flusher write what is held, for at most
// CloseFlushTimeout, then closes the connection. With nothing held it
// closes at once: a session dies with its streams' readers still waiting,
// and they are released only once the close gets through.
func (w *batchWriter) Close() error {
	w.mu.Lock()
	w.closed = true
	flushing := w.cut > 0 || w.writing
	w.cond.Broadcast()
	w.mu.Unlock()
	if flushing {
		t := time.NewTimer(CloseFlushTimeout)
		select {
		case <-w.done:
		case <-t.C:
		}
		t.Stop()
	}
	// A Write still in flight fails on the closed connection, and the
	// flusher returns.
	return w.Conn.Close()
}

// frameParser follows yamux's framing across writes of any split.
type frameParser struct {
	hdr     [yamuxHeaderSize]byte
	hdrLen  int    // header bytes seen of the current frame
	bodyLen uint32 // body bytes still to come
}

// feed advances over p and reports whether it ends on a frame boundary.
func (f *frameParser) feed(p []byte) bool {
	for len(p) > 0 {
		if f.bodyLen > 0 {
			n := uint32(len(p))
			if n > f.bodyLen {
				n = f.bodyLen
			}
			f.bodyLen -= n
			p = p[n:]
			continue
		}
		n := copy(f.hdr[f.hdrLen:], p)
		f.hdrLen += n
		p = p[n:]
		if f.hdrLen == yamuxHeaderSize {
			f.hdrLen = 0
			if f.hdr[1] == yamuxTypeData {
				f.bodyLen = binary.BigEndian.Uint32(f.hdr[8:12])
			}
		}
	}
	return f.hdrLen == 0 && f.bodyLen == 0
}
