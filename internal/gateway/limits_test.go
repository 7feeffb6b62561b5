package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDefaultLimitsAreAllSet(t *testing.T) {
	var check func(prefix string, v reflect.Value)
	check = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f, name := v.Field(i), prefix+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct {
				check(name+".", f)
				continue
			}
			if f.IsZero() {
				t.Errorf("default for %s is zero", name)
			}
		}
	}
	check("", reflect.ValueOf(DefaultLimits()))
	var zero Limits
	if err := zero.Validate(); err == nil {
		t.Error("zero Limits validated: a forgotten limit must be refused, not read as unlimited")
	}
	zero.Default()
	if !reflect.DeepEqual(zero, DefaultLimits()) {
		t.Errorf("zero Limits after Default = %+v", zero)
	}
	if err := zero.Validate(); err != nil {
		t.Errorf("defaulted Limits refused: %v", err)
	}
	bad := DefaultLimits()
	bad.Tunnel.MaxStreamWindow = 64 << 10
	if err := bad.Validate(); err == nil {
		t.Error("a window below yamux's minimum was accepted")
	}
	bad = DefaultLimits()
	bad.MaxHeaderBytes = 1 << 20
	if err := bad.Validate(); err == nil {
		t.Error("a header limit beyond the 2-byte length was accepted")
	}
}

func TestStalledHandshakeClosed(t *testing.T) {
	lim := testLimits()
	lim.Tunnel.HandshakeTimeout = 200 * time.Millisecond
	p := newPair(t, pairOpts{inLimits: lim})
	for _, prefix := range [][]byte{nil, {0x16, 0x03, 0x01, 0x02, 0x00}} { // nothing; a record header, then silence
		c := dial(t, p.inAddr)
		_, _ = c.Write(prefix)
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.ReadAll(c)
		if elapsed := time.Since(start); elapsed > time.Second || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled handshake (prefix %x) open for %v (err %v)", prefix, elapsed, err)
		}
	}
	testkit.EventuallyWithin(t, time.Second, "timeouts counted", func() bool { return p.rejected(tunnel.ReasonHandshakeTimeout) == 2 })
}

func TestIdleStreamClosed(t *testing.T) {
	for _, side := range []string{"ingress", "egress"} {
		t.Run(side, func(t *testing.T) {
			short := testLimits()
			short.IdleTimeout = 200 * time.Millisecond
			po := pairOpts{}
			if side == "ingress" {
				po.inLimits = short
			} else {
				po.egLimits = short
			}
			p := newPair(t, po)
			backendDone := make(chan struct{})
			be := newBackend(t, func(c *net.TCPConn, b *backend) {
				echo(c, b)
				close(backendDone)
			})
			p.export("echo", nil, be.addr())
			c := dial(t, p.route(t, "echo"))
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			// Now idle: the client must see the end well before its own
			// deadline, and so must the backend.
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err := c.Read(buf)
			if err == nil || time.Since(start) > 2*time.Second {
				t.Fatalf("idle connection: err=%v after %v", err, time.Since(start))
			}
			select {
			case <-backendDone:
			case <-time.After(3 * time.Second):
				t.Fatal("backend connection outlived the idle timeout")
			}
		})
	}
}

func TestHeaderLimits(t *testing.T) {
	lim := testLimits()
	lim.MaxHeaderBytes = 64
	lim.HeaderTimeout = 200 * time.Millisecond
	p := newPair(t, pairOpts{inLimits: lim})
	be := newBackend(t, echo)
	long := strings.Repeat("a", 63)
	p.exports.Publish(exports.Of(exports.TCP(long, long, 80)), nil)
	p.endpoints.Set(long, long, 80, []string{be.addr()})
	sess, err := rawSession(t, p.inAddr, p.west.Gateway.ClientTLSConfig(p.east.GatewayID()))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("oversized", func(t *testing.T) {
		// A valid, exported target whose header (131 bytes) exceeds the 64-byte limit.
		err := rawStream(t, sess, encode(tunnel.Target{Namespace: long, Service: long, Port: 80}))
		var re *tunnel.RejectError
		if !errors.As(err, &re) || re.Status != tunnel.StatusBadHeader || p.rejected(ReasonHeaderTooLarge) != 1 {
			t.Fatalf("reply %v, counted %v", err, p.rejected(ReasonHeaderTooLarge))
		}
	})
	t.Run("slow header", func(t *testing.T) {
		st, err := sess.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		hdr := binary.BigEndian.AppendUint16(nil, 10)
		_, _ = st.Write(append(hdr, 1, 2)) // 2 of 10 promised bytes, then nothing
		start := time.Now()
		_ = st.SetReadDeadline(time.Now().Add(3 * time.Second))
		err = tunnel.ReadReply(st)
		if !isStatus(err, tunnel.StatusBadHeader) || time.Since(start) > time.Second {
			t.Fatalf("slow header: %v after %v", err, time.Since(start))
		}
		if p.rejected(ReasonHeaderTimeout) != 1 {
			t.Fatal("header timeout not counted")
		}
	})
	if be.accepted.Load() != 0 {
		t.Fatal("backend reached")
	}
}

func isStatus(err error, s tunnel.Status) bool {
	var re *tunnel.RejectError
	return errors.As(err, &re) && re.Status == s
}

// fillEgress routes an echo export with egress limits lim, holds n
// connections open on it from 127.0.0.1, and checks that one more is
// refused.
func fillEgress(t *testing.T, lim Limits, n int) (*pair, string) {
	t.Helper()
	p := newPair(t, pairOpts{egLimits: lim})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	addr := p.route(t, "echo")
	for range n {
		c := dial(t, addr)
		_, _ = c.Write([]byte("x"))
		_, _ = io.ReadFull(c, make([]byte, 1))
	}
	expectRefused(t, addr)
	return p, addr
}

func TestMaxEgressConns(t *testing.T) {
	lim := testLimits()
	lim.MaxEgressConns = 2
	p, _ := fillEgress(t, lim, 2)
	if p.eg.ActiveConns() != 2 {
		t.Fatalf("active = %d", p.eg.ActiveConns())
	}
}

// One client address (a pod) cannot take the whole egress connection cap:
// it hits its own cap while another client still gets through (issue 11,
// finding 9).
func TestMaxEgressConnsPerClient(t *testing.T) {
	lim := testLimits()
	lim.MaxEgressConnsPerClient = 2
	p, addr := fillEgress(t, lim, 2)
	// Another address on loopback is another client.
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_ = other.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := other.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(other, make([]byte, 1)); err != nil {
		t.Fatalf("a second client was refused: %v", err)
	}
	if got := testutil.ToFloat64(p.egMetrics.EgressFailed.WithLabelValues("east", ReasonClientConnLimit)); got != 1 {
		t.Errorf("client_connection_limit failures = %v, want 1", got)
	}
}

// A client that sends without the backend ever reading must be held back by
// flow control, not buffered by the gateways.
func TestSlowReaderBoundsBuffering(t *testing.T) {
	p := newPair(t, pairOpts{})
	hold := make(chan struct{})
	defer close(hold)
	be := newBackend(t, func(c *net.TCPConn, _ *backend) {
		_ = c.SetReadBuffer(64 << 10)
		<-hold // never reads
	})
	p.export("sink", nil, be.addr())
	c := dial(t, p.route(t, "sink"))
	_ = c.SetWriteBuffer(64 << 10)
	var written atomic.Int64
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	for {
		n, err := c.Write(chunk)
		written.Add(int64(n))
		if err != nil {
			break
		}
	}
	// Kernel socket buffers (which autotune to a few MiB per socket on
	// loopback) plus one yamux window: tens of MiB at most, where an
	// unbounded relay would take gigabytes in this second.
	const bound = 32 << 20
	if w := written.Load(); w > bound {
		t.Fatalf("gateways absorbed %d MiB from a client whose backend does not read", w>>20)
	} else {
		t.Logf("absorbed %.1f MiB before backpressure", float64(w)/(1<<20))
	}
}

func TestDrainLetsRunningStreamFinish(t *testing.T) {
	p := newPair(t, pairOpts{})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	addr := p.route(t, "echo")
	c := dial(t, addr)
	if _, err := c.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}

	ops := &Ops{Checks: []Check{CertificateLoaded(p.east.Gateway)}}
	if err := ops.Ready(); err != nil {
		t.Fatalf("not ready before drain: %v", err)
	}
	drained := make(chan error, 1)
	go func() { drained <- Drain(context.Background(), ops, 5*time.Second, p.eg, p.in) }()
	testkit.EventuallyWithin(t, time.Second, "not ready", func() bool { return ops.Ready() != nil })
	rec := httptest.NewRecorder()
	ops.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/ready during drain = %d", rec.Code)
	}

	// New connections are refused, the running one keeps working.
	testkit.EventuallyWithin(t, time.Second, "egress port closed", func() bool {
		nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	if _, err := c.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "during" {
		t.Fatalf("running stream during drain: %q %v", buf, err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain finished with a stream running: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	_ = c.CloseWrite()
	if rest, err := readAll(t, c); err != nil || len(rest) != 0 {
		t.Fatalf("close: %q %v", rest, err)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("drain did not finish after the last stream")
	}
}

func TestDrainDeadlineCutsStreams(t *testing.T) {
	p := newPair(t, pairOpts{})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	c := dial(t, p.route(t, "echo"))
	_, _ = c.Write([]byte("x"))
	_, _ = io.ReadFull(c, make([]byte, 1))
	start := time.Now()
	err := Drain(context.Background(), nil, 200*time.Millisecond, p.eg, p.in)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("drain took %v", d)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client connection survived the drain deadline: %v", err)
	}
}
