package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// recorder is an Observer that remembers everything.
type recorder struct {
	mu       sync.Mutex
	rejected map[string]int
	sessions map[string]int
	up       map[string]bool
	inbound  map[string]int
}

func newRecorder() *recorder {
	return &recorder{rejected: map[string]int{}, sessions: map[string]int{}, up: map[string]bool{}, inbound: map[string]int{}}
}

func (r *recorder) Rejected(reason string) { r.mu.Lock(); r.rejected[reason]++; r.mu.Unlock() }
func (r *recorder) Sessions(remote string, n int) {
	r.mu.Lock()
	r.sessions[remote] = n
	r.mu.Unlock()
}
func (r *recorder) RemoteUp(remote string, up bool) { r.mu.Lock(); r.up[remote] = up; r.mu.Unlock() }
func (r *recorder) ForgetRemote(remote string) {
	r.mu.Lock()
	delete(r.up, remote)
	delete(r.sessions, remote)
	r.mu.Unlock()
}
func (r *recorder) InboundSessions(c string, d int) { r.mu.Lock(); r.inbound[c] += d; r.mu.Unlock() }

func (r *recorder) rejects(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected[reason]
}

func (r *recorder) isUp(remote string) (bool, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.up[remote]
	return v, ok
}

// echoHandler accepts every target and echoes bytes, preserving half-close.
type echoHandler struct{}

func (echoHandler) ServeStream(_ context.Context, _ identity.ID, s *Stream) {
	if _, err := ReadHeader(s, DefaultMaxHeaderBytes); err != nil {
		return
	}
	if err := WriteReply(s, StatusOK, ""); err != nil {
		return
	}
	_, _ = io.Copy(s, s)
	_ = s.CloseWrite()
}

// blockingHandler holds every stream until release is closed.
type blockingHandler struct{ release chan struct{} }

func (h blockingHandler) ServeStream(ctx context.Context, _ identity.ID, s *Stream) {
	if _, err := ReadHeader(s, DefaultMaxHeaderBytes); err != nil {
		return
	}
	_ = WriteReply(s, StatusOK, "")
	select {
	case <-h.release:
	case <-ctx.Done():
	}
}

type env struct {
	mesh   *identitytest.Mesh
	east   *identitytest.Cluster
	west   *identitytest.Cluster
	srv    *Server
	srvObs *recorder
	addr   string
}

func testLimits() Limits {
	l := Limits{
		HandshakeTimeout: time.Second,
		// Generous: the race detector on two busy cores can delay a ping by
		// hundreds of milliseconds. The keepalive test sets its own.
		KeepAliveInterval: time.Second,
		KeepAliveTimeout:  3 * time.Second,
		StreamOpenTimeout: 2 * time.Second,
		// Room for the 1000 concurrent streams some tests open: memory
		// only pinned if they were sent data that nobody reads. The memory
		// tests set their own.
		MaxCallerStreamMemory: 4096 * 256 << 10,
		MaxTotalStreamMemory:  4096 * 256 << 10,
	}
	// The rest take the defaults.
	l.Default()
	return l
}

// newEnv starts an east ingress server with handler h.
func newEnv(t testing.TB, h StreamHandler, lim Limits, h2 *ConnListener) *env {
	t.Helper()
	lim.Default()
	m := identitytest.NewMesh(t, "", "east", "west")
	e := &env{mesh: m, east: m.Cluster(t, "east"), west: m.Cluster(t, "west"), srvObs: newRecorder()}
	srv, err := NewServer(ServerOptions{
		Local: e.east.GatewayID(), TLS: e.east.Gateway, Handler: h, H2: h2,
		Limits: lim, Observer: e.srvObs, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.addr = srv, ln.Addr().String()
	go func() { _ = srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return e
}

// client returns a west client with east configured as remote.
func (e *env) client(t testing.TB, src ClientTLS, poolSize int, lim Limits) (*Client, *recorder) {
	t.Helper()
	obs := newRecorder()
	c, err := NewClient(ClientOptions{
		TLS: src, Limits: lim, PoolSize: poolSize, DialTimeout: time.Second,
		MaxBackoff: 200 * time.Millisecond, Observer: obs, Logger: testkit.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetRemotes(map[string]Remote{"east": {Addresses: []string{e.addr}, Identity: e.east.GatewayID()}})
	t.Cleanup(func() { _ = c.Close() })
	return c, obs
}

func openCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var target = Target{Namespace: "default", Service: "echo", Port: 80}

func isReject(err error, s Status) bool {
	var re *RejectError
	return errors.As(err, &re) && re.Status == s
}
