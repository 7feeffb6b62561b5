package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2 := <-ch
	if c2 == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return c1.(*net.TCPConn), c2.(*net.TCPConn)
}

// spliced wires client <-> [a | splice | b] <-> server and returns the
// outer ends plus a channel with Splice's result.
func spliced(t *testing.T, o SpliceOptions) (client, server *net.TCPConn, done chan error) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	done = make(chan error, 1)
	go func() {
		_, _, err := Splice(context.Background(), a, b, o)
		done <- err
	}()
	return client, server, done
}

func readAllTimeout(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func TestSpliceHalfCloseClientFirst(t *testing.T) {
	client, server, done := spliced(t, SpliceOptions{IdleTimeout: 5 * time.Second})
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	_ = client.CloseWrite()
	// The server sees the request and then EOF, but can still answer.
	if got := readAllTimeout(t, server); string(got) != "request" {
		t.Fatalf("server read %q", got)
	}
	if _, err := server.Write([]byte("response after client FIN")); err != nil {
		t.Fatal(err)
	}
	_ = server.CloseWrite()
	if got := readAllTimeout(t, client); string(got) != "response after client FIN" {
		t.Fatalf("client read %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("splice: %v", err)
	}
}

func TestSpliceHalfCloseServerFirst(t *testing.T) {
	client, server, done := spliced(t, SpliceOptions{IdleTimeout: 5 * time.Second})
	if _, err := server.Write([]byte("banner")); err != nil {
		t.Fatal(err)
	}
	_ = server.CloseWrite()
	if got := readAllTimeout(t, client); string(got) != "banner" {
		t.Fatalf("client read %q", got)
	}
	// The client keeps sending after the server's FIN.
	payload := bytes.Repeat([]byte("x"), 1<<20)
	go func() {
		_, _ = client.Write(payload)
		_ = client.CloseWrite()
	}()
	if got := readAllTimeout(t, server); !bytes.Equal(got, payload) {
		t.Fatalf("server read %d bytes, want %d", len(got), len(payload))
	}
	if err := <-done; err != nil {
		t.Fatalf("splice: %v", err)
	}
}

func TestSpliceIdleTimeout(t *testing.T) {
	_, _, done := spliced(t, SpliceOptions{IdleTimeout: 100 * time.Millisecond})
	select {
	case err := <-done:
		if !errors.Is(err, ErrIdleTimeout) {
			t.Fatalf("err = %v, want ErrIdleTimeout", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("idle splice not closed")
	}
}

// A one-way stream is not idle: the quiet direction must not time out while
// the other keeps moving bytes.
func TestSpliceOneWayNotIdle(t *testing.T) {
	// The margins are wide (writes every 20ms against a 400ms timeout) so a
	// loaded machine cannot make the stream genuinely idle.
	client, server, done := spliced(t, SpliceOptions{IdleTimeout: 400 * time.Millisecond})
	stop := time.After(1200 * time.Millisecond)
	buf := make([]byte, 1)
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := server.Write([]byte("t")); err != nil {
			t.Fatalf("write: %v", err)
		}
		_ = client.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatalf("splice closed a busy one-way stream: %v", err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("splice ended early: %v", err)
	default:
	}
}

func TestSpliceCounts(t *testing.T) {
	var ab, ba int
	first := 0
	client, server, done := spliced(t, SpliceOptions{
		AToB: func(n int) { ab += n }, BToA: func(n int) { ba += n },
		FirstByteBToA: func() { first++ },
	})
	_, _ = client.Write([]byte("12345"))
	_ = client.CloseWrite()
	readAllTimeout(t, server)
	_, _ = server.Write([]byte("abc"))
	_, _ = server.Write([]byte("def"))
	_ = server.CloseWrite()
	readAllTimeout(t, client)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ab != 5 || ba != 6 || first != 1 {
		t.Fatalf("ab=%d ba=%d first=%d", ab, ba, first)
	}
}

func TestSpliceContextAborts(t *testing.T) {
	client, a := tcpPair(t)
	b, _ := tcpPair(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := Splice(ctx, a, b, SpliceOptions{})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("splice ignored its context")
	}
	// The outer client sees a reset, not a clean EOF.
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("client read err = %v, want connection reset", err)
	}
}
