package benchpeer

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
)

// BenchmarkMuxerOverWAN is the muxer alone over the WAN workload's delay
// relay: plain go-yamux (Ferry's copy), no TLS, no gateways, one stream per
// op carrying the bytes one way, window growth included, with upstream's
// grant threshold and with Ferry's. It tells what the muxer's
// flow control allows over the path, so that hack/bench's Ferry figures
// can be read against it:
//
//	go test -run '^$' -bench MuxerOverWAN -benchtime 3x ./internal/tooling/benchpeer
func BenchmarkMuxerOverWAN(b *testing.B) {
	for _, rtt := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond} {
		for _, window := range []uint32{1 << 20, 16 << 20} {
			// 2 is upstream go-yamux's grant threshold, 8 Ferry's
			// (third_party/go-yamux/PATCHES.md).
			for _, fraction := range []uint32{2, 8} {
				for _, mib := range []int64{16, 64} {
					name := fmt.Sprintf("rtt=%v/window=%dMiB/grant=1of%d/transfer=%dMiB", rtt, window>>20, fraction, mib)
					b.Run(name, func(b *testing.B) { muxerOverWAN(b, rtt, window, fraction, mib<<20) })
				}
			}
		}
	}
}

func muxerOverWAN(b *testing.B, rtt time.Duration, window, fraction uint32, n int64) {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.MaxStreamWindowSize = window
	cfg.WindowUpdateFraction = fraction
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	r, err := startRelay(rtt)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	r.setTarget(ln.Addr().String())
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		s, err := yamux.Server(c, cfg, nil)
		if err != nil {
			served <- err
			return
		}
		defer s.Close()
		for {
			st, err := s.AcceptStream()
			if err != nil {
				served <- nil
				return
			}
			// Sink the stream, then say so: the op ends when the last byte
			// was read, not when it was written.
			if _, err := io.Copy(io.Discard, st); err != nil {
				served <- err
				return
			}
			_, _ = st.Write([]byte{1})
			_ = st.Close()
		}
	}()
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		b.Fatal(err)
	}
	sess, err := yamux.Client(c, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Window growth is judged against the session's RTT: wait for it.
	for deadline := time.Now().Add(5 * time.Second); sess.RTT() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no RTT measured")
		}
	}
	buf := make([]byte, 32<<10)
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		st, err := sess.OpenStream(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for left := n; left > 0; left -= int64(len(buf)) {
			if _, err := st.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				b.Fatal(err)
			}
		}
		_ = st.CloseWrite()
		if _, err := io.ReadFull(st, buf[:1]); err != nil {
			b.Fatal(err)
		}
		_ = st.Close()
	}
	b.StopTimer()
	_ = sess.Close()
	if err := <-served; err != nil {
		b.Fatal(err)
	}
}
