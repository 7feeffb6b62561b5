package testkit

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// FreezeProxy forwards TCP on loopback to a target until frozen. Frozen,
// its connections stay open but carry nothing, and new ones are accepted
// but get no answer: a peer that hangs (SIGSTOP, a black-holing path)
// rather than one that dies, which is what keepalives and attempt
// timeouts are for.
type FreezeProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// NewFreezeProxy starts a proxy to target, closed when t ends.
func NewFreezeProxy(t testing.TB, target string) *FreezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FreezeProxy{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

// Addr is the proxy's listening address.
func (p *FreezeProxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops (true) or resumes (false) forwarding. Bytes that arrive
// while frozen are dropped, as a dead path drops them.
func (p *FreezeProxy) Freeze(frozen bool) { p.frozen.Store(frozen) }

func (p *FreezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}
