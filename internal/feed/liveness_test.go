package feed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

func TestHeartbeatsKeepAnIdleStreamUp(t *testing.T) {
	f := newFixture(t, ServerOptions{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond})
	f.publish(exp("a"))
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.HeartbeatInterval, cfg.HeartbeatTimeout = 50*time.Millisecond, 300*time.Millisecond
	run(t, cfg, r, 0)
	r.wait(t, "heartbeats", func(r *recorder) bool { return len(r.heartbeats) >= 10 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.disconnected) != 0 || r.connected != 1 {
		t.Fatalf("idle stream dropped: %v", r.disconnected)
	}
	if r.heartbeats[len(r.heartbeats)-1] != r.updates[0].Version {
		t.Fatalf("heartbeat version %d, snapshot %d", r.heartbeats[len(r.heartbeats)-1], r.updates[0].Version)
	}
}

// TestClientDetectsSilentServer: a server that stops talking (hung, or the
// path dropped without a reset) is abandoned after the heartbeat timeout and
// the client reconnects and resumes.
func TestClientDetectsSilentServer(t *testing.T) {
	// This server never sends heartbeats within the client's timeout.
	f := newFixture(t, ServerOptions{HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour})
	f.publish(exp("a"))
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.HeartbeatInterval, cfg.HeartbeatTimeout = 50*time.Millisecond, 300*time.Millisecond
	start := time.Now()
	run(t, cfg, r, 0)
	r.wait(t, "timeout", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("dead stream detected after %s", took)
	}
	if err := r.disconnected[0]; !errors.Is(err, ErrHeartbeatTimeout) {
		t.Fatalf("disconnect reason %v", err)
	}
	// The reconnect resumes: the server answers with a heartbeat, no
	// second snapshot.
	r.wait(t, "resume", func(r *recorder) bool { return r.connected >= 2 && len(r.heartbeats) > 0 })
	f.waitCounted(t, "west", kindSnapshot, 1)
	if f.updates("west", kindSnapshot) != 1 {
		t.Fatalf("%v snapshots", f.updates("west", kindSnapshot))
	}
}

// TestClientDetectsBlackHole: an address that accepts TCP and never answers.
func TestClientDetectsBlackHole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	f := newFixture(t, ServerOptions{})
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.Addresses = []string{ln.Addr().String()}
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	run(t, cfg, r, 0)
	r.wait(t, "timeout", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if !errors.Is(r.disconnected[0], ErrHeartbeatTimeout) {
		t.Fatalf("reason %v", r.disconnected[0])
	}
}

func TestClientFailsOverAcrossAddresses(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	f.publish(exp("a"))
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // connection refused
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.Addresses = []string{deadAddr, f.addr}
	run(t, cfg, r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	if len(r.disconnected) != 1 || !strings.Contains(r.disconnected[0].Error(), deadAddr) {
		t.Fatalf("disconnects %v", r.disconnected)
	}
}

// rawStream opens a feed stream as a bare gRPC client would, to misbehave.
func rawStream(t *testing.T, f *fixture, cluster string) feedpb.Feed_SubscribeClient {
	t.Helper()
	cfg := f.mesh.Cluster(t, cluster).Controller.ClientTLSConfig(f.mesh.Cluster(t, "east").GatewayID())
	conn, err := grpc.NewClient("passthrough:///"+f.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s, err := feedpb.NewFeedClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recvUntilError(s feedpb.Feed_SubscribeClient) (int, error) {
	n := 0
	for {
		if _, err := s.Recv(); err != nil {
			return n, err
		}
		n++
	}
}

func TestServerDropsSilentClient(t *testing.T) {
	f := newFixture(t, ServerOptions{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond})
	f.publish(exp("a"))
	s := rawStream(t, f, "west")
	if err := s.Send(&feedpb.ClientMessage{Msg: &feedpb.ClientMessage_Subscribe{Subscribe: &feedpb.Subscribe{}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := recvUntilError(s) // and never send a heartbeat
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 3*time.Second {
		t.Fatalf("after %d messages and %s: %v", n, time.Since(start), err)
	}
	// And a client that never subscribes at all.
	s2 := rawStream(t, f, "west")
	if _, err := recvUntilError(s2); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("no Subscribe: %v", err)
	}
}

func TestServerRefusesProtocolAbuse(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	f.publish(exp("a"))
	s := rawStream(t, f, "west")
	sub := &feedpb.ClientMessage{Msg: &feedpb.ClientMessage_Subscribe{Subscribe: &feedpb.Subscribe{}}}
	for range 2 { // a second Subscribe is a protocol error
		if err := s.Send(sub); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := recvUntilError(s); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("double subscribe: %v", err)
	}
	// A message over MaxClientMessageBytes is refused by gRPC itself.
	s2 := rawStream(t, f, "west")
	big := &feedpb.ClientMessage{Msg: &feedpb.ClientMessage_Subscribe{Subscribe: &feedpb.Subscribe{}}}
	big.ProtoReflect().SetUnknown(append([]byte{0xfa, 0x01, 0x80, 0x40}, make([]byte, 8192)...)) // field 31, 8 KiB
	_ = s2.Send(big)
	if _, err := recvUntilError(s2); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized client message: %v", err)
	}
}

func TestSubscriberLimits(t *testing.T) {
	f := newFixture(t, ServerOptions{MaxStreamsPerCluster: 1})
	f.publish(exp("a"))
	r := newRecorder()
	run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "first", func(r *recorder) bool { return len(r.updates) == 1 })
	r2 := newRecorder()
	run(t, f.clientConfig(t, "west"), r2, 0)
	r2.wait(t, "refusal", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if status.Code(errors.Unwrap(r2.disconnected[0])) != codes.ResourceExhausted && !strings.Contains(r2.disconnected[0].Error(), "ResourceExhausted") {
		t.Fatalf("second stream of one cluster: %v", r2.disconnected[0])
	}
	// Another cluster is unaffected.
	r3 := newRecorder()
	run(t, f.clientConfig(t, "north"), r3, 0)
	r3.wait(t, "north", func(r *recorder) bool { return len(r.updates) == 1 })
}

func TestLargeSnapshotsAreChunked(t *testing.T) {
	const limit = 64 << 10
	f := newFixture(t, ServerOptions{MaxMessageBytes: limit})
	var es []exports.Export
	for i := range 400 {
		es = append(es, exp(fmt.Sprintf("e%03d", i), func(e *exports.Export) {
			e.Annotations = map[string]string{"doc": strings.Repeat("x", 1000)}
		}))
	}
	f.publish(es...)
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.MaxMessageBytes = limit
	run(t, cfg, r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	if len(r.state) != 400 || !r.updates[0].Snapshot {
		t.Fatalf("got %d exports", len(r.state))
	}
	f.waitCounted(t, "west", kindSnapshot, 1)
	msgs := f.sent("west", kindSnapshot)
	if msgs < 6 || f.updates("west", kindSnapshot) != 1 {
		t.Fatalf("400 KiB snapshot in %v messages (limit %d bytes)", msgs, limit)
	}
	t.Logf("400 exports of ~1 KiB: one snapshot in %v messages of at most %d bytes", msgs, limit)

	// A client whose limit is below the server's chunks refuses them.
	r2 := newRecorder()
	cfg.Addresses = []string{f.addr}
	cfg.MaxMessageBytes = 16 << 10
	run(t, cfg, r2, 0)
	r2.wait(t, "refusal", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if !strings.Contains(r2.disconnected[0].Error(), "ResourceExhausted") || len(r2.updates) != 0 {
		t.Fatalf("oversized message: %v", r2.disconnected[0])
	}
	// A client bounds how many exports one update may hold.
	r3 := newRecorder()
	cfg.MaxMessageBytes, cfg.MaxExports = limit, 100
	run(t, cfg, r3, 0)
	r3.wait(t, "refusal", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if !errors.Is(r3.disconnected[0], errProtocol) || len(r3.updates) != 0 {
		t.Fatalf("too many exports: %v", r3.disconnected[0])
	}
}

// TestSnapshotsAreSentInSmallMessages: under the default MaxMessageBytes
// (1 MiB) a snapshot still goes in messages of about chunkBytes, so a
// subscriber holds one small message at a time, not the whole snapshot.
func TestSnapshotsAreSentInSmallMessages(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	const n = 2000
	var es []exports.Export
	for i := range n {
		es = append(es, exp(fmt.Sprintf("e%04d", i), func(e *exports.Export) {
			e.Annotations = map[string]string{"doc": strings.Repeat("x", 200)}
		}))
	}
	f.publish(es...)
	r := newRecorder()
	run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	if len(r.state) != n {
		t.Fatalf("got %d exports, want %d", len(r.state), n)
	}
	f.waitCounted(t, "west", kindSnapshot, 1)
	msgs := f.sent("west", kindSnapshot)
	bytes := testutil.ToFloat64(f.metrics.Bytes.WithLabelValues("west")) // the snapshot is all this client was sent
	if bytes < 4*chunkBytes || bytes/msgs > chunkBytes+1024 {
		t.Fatalf("a snapshot of %v bytes in %v messages: want messages of at most about %d bytes", bytes, msgs, chunkBytes)
	}
	t.Logf("%d exports: %v bytes in %v messages", n, bytes, msgs)
}

func TestGracefulStopEndsStreams(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	f.publish(exp("a"))
	r := newRecorder()
	run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	done := make(chan struct{})
	go func() { f.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop hangs on open feed streams")
	}
	r.wait(t, "disconnect", func(r *recorder) bool { return len(r.disconnected) > 0 })
}
