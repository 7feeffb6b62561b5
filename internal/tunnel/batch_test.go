package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// frame is a yamux frame: a data frame with a body, or a header-only one
// (window update, ping) whose length field is not a body length.
func frame(typ byte, stream uint32, length uint32, body []byte) [][]byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:8], stream)
	binary.BigEndian.PutUint32(h[8:12], length)
	if typ != yamuxTypeData || length == 0 {
		return [][]byte{h}
	}
	return [][]byte{h, body}
}

// recConn records each Write the flusher makes; stall, when set, blocks
// Writes until Close.
type recConn struct {
	net.Conn // unset: only Read, Write and Close are used
	mu       sync.Mutex
	writes   [][]byte
	stall    chan struct{}
	fail     error
	closed   chan struct{}
	once     sync.Once
}

func newRecConn() *recConn { return &recConn{closed: make(chan struct{})} }

func (c *recConn) Read([]byte) (int, error) { <-c.closed; return 0, net.ErrClosed }

func (c *recConn) Write(p []byte) (int, error) {
	if c.stall != nil {
		select {
		case <-c.stall:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	if c.fail != nil {
		return 0, c.fail
	}
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return len(p), nil
}

func (c *recConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *recConn) all() (joined []byte, writes [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.writes, nil), append([][]byte(nil), c.writes...)
}

func TestFrameParserFollowsFramesAcrossAnySplit(t *testing.T) {
	var stream []byte
	var ends []int // offsets where a frame ends
	for i := range 50 {
		body := bytes.Repeat([]byte{byte(i)}, i*37)
		typ := byte(yamuxTypeData)
		if i%4 == 3 {
			typ = 1 // window update: length is a delta, no body follows
		}
		for _, part := range frame(typ, uint32(i), uint32(len(body))+uint32(i%4/3*1000), body) {
			stream = append(stream, part...)
		}
		ends = append(ends, len(stream))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var f frameParser
		at := 0
		for at < len(stream) {
			n := 1 + r.IntN(40)
			if at+n > len(stream) {
				n = len(stream) - at
			}
			boundary := f.feed(stream[at : at+n])
			at += n
			want := false
			for _, e := range ends {
				want = want || e == at
			}
			if boundary != want {
				t.Fatalf("after %d bytes: boundary %v, want %v", at, boundary, want)
			}
		}
	}
}

// Every byte arrives, in order, and every write to the connection ends on
// a frame boundary: a header never travels without its body.
func TestBatchWriterKeepsOrderAndFrames(t *testing.T) {
	c := newRecConn()
	w := newBatchWriter(c)
	var want []byte
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		n := r.IntN(3000)
		if i%100 == 0 {
			n = MaxBatch + 1000 // one frame larger than a batch must pass too
		}
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(i + j)
		}
		for _, part := range frame(yamuxTypeData, uint32(i), uint32(n), body) {
			if _, err := w.Write(part); err != nil {
				t.Fatal(err)
			}
			want = append(want, part...)
		}
		if i%7 == 0 {
			part := frame(1, uint32(i), 65536, nil)[0]
			if _, err := w.Write(part); err != nil {
				t.Fatal(err)
			}
			want = append(want, part...)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, writes := c.all()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d (or they differ)", len(got), len(want))
	}
	for i, wr := range writes {
		var f frameParser
		if !f.feed(wr) {
			t.Fatalf("write %d of %d (%d bytes) ends inside a frame", i, len(writes), len(wr))
		}
	}
	t.Logf("%d frames in %d connection writes", 2000+2000/7+1, len(writes))
}

// A peer that stops reading: the writer holds at most MaxBatch (plus the
// frame that crossed it), then Writes wait; Close gives up after
// CloseFlushTimeout and fails later Writes.
func TestBatchWriterBoundedAndClosable(t *testing.T) {
	c := newRecConn()
	c.stall = make(chan struct{})
	w := newBatchWriter(c)
	stopped := make(chan error, 1)
	go func() {
		body := make([]byte, 4096)
		for {
			for _, part := range frame(yamuxTypeData, 1, uint32(len(body)), body) {
				if _, err := w.Write(part); err != nil {
					stopped <- err
					return
				}
			}
		}
	}()
	bound := MaxBatch + 4096 + yamuxHeaderSize
	heldNow := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.pending == nil {
			return 0
		}
		return len(w.pending.b)
	}
	// Fill up to the bound, then stay there while the peer reads nothing.
	deadline := time.Now().Add(10 * time.Second)
	for heldNow() < MaxBatch-4096 {
		if time.Now().After(deadline) {
			t.Fatalf("holds only %d bytes after 10 s", heldNow())
		}
		time.Sleep(time.Millisecond)
	}
	for range 50 {
		if n := heldNow(); n > bound {
			t.Fatalf("holds %d bytes; bound %d", n, bound)
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < CloseFlushTimeout/2 {
		t.Errorf("Close returned after %v with a stalled peer; it should try to flush for %v", d, CloseFlushTimeout)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("the blocked Write ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Write still blocks after Close")
	}
	if _, err := w.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// Steady batching allocates nothing: buffers come from the pool and go
// back to it.
func TestBatchWriterAllocatesNothingPerFrame(t *testing.T) {
	c := &discardConn{}
	w := newBatchWriter(c)
	defer w.Close()
	hdr, body := frame(yamuxTypeData, 1, 1024, make([]byte, 1024))[0], make([]byte, 1024)
	write := func() {
		if _, err := w.Write(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 { // warm the pool
		write()
	}
	if n := testing.AllocsPerRun(2000, write); n > 0.05 {
		t.Errorf("%.2f allocations per frame; want none", n)
	}
}

// discardConn takes every write.
type discardConn struct{ net.Conn }

func (discardConn) Read([]byte) (int, error)    { select {} }
func (discardConn) Write(p []byte) (int, error) { return len(p), nil }
func (discardConn) Close() error                { return nil }

// The connection's first error fails every later Write.
func TestBatchWriterErrorIsSticky(t *testing.T) {
	c := newRecConn()
	boom := errors.New("boom")
	c.fail = boom
	w := newBatchWriter(c)
	defer w.Close()
	part := frame(1, 1, 1, nil)[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := w.Write(part)
		if errors.Is(err, boom) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Write: %v; want the connection's error", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := w.Write(part); !errors.Is(err, boom) {
		t.Fatalf("a later Write: %v, want %v", err, boom)
	}
}
