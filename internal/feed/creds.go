package feed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// handshakeTimeout bounds the TLS handshake of a conn that arrives without
// one (tls.NewListener conns handshake lazily); conns from the gateway's
// listener are already handshaken and pay nothing.
const handshakeTimeout = 10 * time.Second

// errNotTLS is returned for a conn that is not a *tls.Conn (or one that
// embeds it).
var errNotTLS = errors.New("feed: connection is not TLS")

// ServerCredentials returns gRPC transport credentials for conns that
// are already TLS: the gateway's ingress listener terminates TLS (and
// verifies the peer's identity) before it hands "h2" conns to the feed, so
// gRPC must not handshake again. It passes the TLS state on as
// credentials.TLSInfo, so handlers read the verified peer with
// identity.PeerID. Conns must come from a listener whose tls.Config was
// made by identity.Source.ServerTLSConfig; nothing here verifies anything.
func ServerCredentials() credentials.TransportCredentials { return handedTLS{} }

type handedTLS struct{}

// tlsConn is a *tls.Conn, or a conn that embeds one (the tunnel's h2
// guard): its reads are the connection's, its state the TLS state.
type tlsConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
	HandshakeContext(context.Context) error
}

func (handedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(tlsConn)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %T", errNotTLS, c)
	}
	if !tc.ConnectionState().HandshakeComplete {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("feed: tls handshake: %w", err)
		}
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != "h2" {
		return nil, nil, fmt.Errorf("feed: ALPN %q, want h2", st.NegotiatedProtocol)
	}
	return tc, credentials.TLSInfo{
		State:          st,
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handedTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("feed: ServerCredentials are for servers only")
}

func (handedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (h handedTLS) Clone() credentials.TransportCredentials { return h }

func (handedTLS) OverrideServerName(string) error { return nil }
