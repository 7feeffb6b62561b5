package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tunnel"
)

// guardedCreds are the client's TLS credentials with tunnel's lifetime guard
// on every connection they make: the connection to the gateway is closed
// when the gateway's chain stops verifying against the current bundle, when
// it expires, and at the maximum age (ClientConfig.Lifetime). gRPC sees the
// connection fail, the stream ends, and Run resumes on a new connection,
// which the current bundle then verifies.
type guardedCreds struct {
	credentials.TransportCredentials
	lt    tunnel.Lifetime
	trust *identity.Source
	log   *slog.Logger
}

func (g guardedCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := g.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		// As is: gRPC decides from the error's own type whether to retry.
		return nil, nil, err
	}
	ti, ok := info.(credentials.TLSInfo)
	if !ok {
		_ = c.Close()
		return nil, nil, fmt.Errorf("feed: %w: auth info %T", errNotTLS, info)
	}
	gc := &guardedConn{Conn: c, gone: make(chan struct{})}
	go tunnel.Guard(g.lt, g.trust, identity.PeerServer, ti.State.PeerCertificates,
		func() { _ = gc.Close() }, gc.gone, g.log.With("addr", raw.RemoteAddr().String()))
	return gc, info, nil
}

func (g guardedCreds) Clone() credentials.TransportCredentials {
	g.TransportCredentials = g.TransportCredentials.Clone()
	return g
}

func (guardedCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("feed: client credentials are for clients only")
}

// guardedConn tells its guard when it is closed, by whoever.
type guardedConn struct {
	net.Conn
	once sync.Once
	gone chan struct{}
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.gone) })
	return err
}
