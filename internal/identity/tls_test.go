package identity_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

// echoServer accepts mesh connections with cfg, echoes one line at a time
// and reports each handshake's outcome (nil or the server-side error).
type echoServer struct {
	addr    string
	results chan error
	peers   chan identity.ID
}

func startEchoServer(t *testing.T, cfg *tls.Config) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &echoServer{addr: ln.Addr().String(), results: make(chan error, 16), peers: make(chan identity.ID, 16)}
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn := tls.Server(raw, cfg)
				defer conn.Close()
				if err := conn.Handshake(); err != nil {
					s.results <- err
					return
				}
				id, err := identity.PeerID(conn.ConnectionState())
				s.results <- err
				s.peers <- id
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return s
}

func (s *echoServer) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.results:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("server reported no handshake")
		return nil
	}
}

type client struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string, cfg *tls.Config) (*client, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return &client{conn: conn, r: bufio.NewReader(conn)}, nil
}

// roundTrip sends a line and reads it back; in TLS 1.3 a client learns that
// the server rejected its certificate only here.
func (c *client) roundTrip(msg string) error {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, msg+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return errors.New("echo mismatch: " + got)
	}
	return nil
}

func TestMutualTLSAcrossClusters(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	srv := startEchoServer(t, east.Gateway.ServerTLSConfig(contract.AllowRemote("east", contract.GatewayServiceAccount)))

	c, err := dial(t, srv.addr, west.Gateway.ClientTLSConfig(east.GatewayID()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.roundTrip("hello"); err != nil {
		t.Fatal(err)
	}
	if err := srv.result(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if got := <-srv.peers; got != west.GatewayID() {
		t.Errorf("server sees peer %v, want %v", got, west.GatewayID())
	}
	if got, err := identity.PeerID(c.conn.ConnectionState()); err != nil || got != east.GatewayID() {
		t.Errorf("client sees peer %v, %v; want %v", got, err, east.GatewayID())
	}
	if v := c.conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", v)
	}
}

func TestTLSRejections(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	srv := startEchoServer(t, east.Gateway.ServerTLSConfig(contract.AllowRemote("east", contract.GatewayServiceAccount)))

	t.Run("client expects another identity", func(t *testing.T) {
		_, err := dial(t, srv.addr, west.Gateway.ClientTLSConfig(west.GatewayID()))
		if !errors.Is(err, identity.ErrUnexpectedID) {
			t.Fatalf("dial: %v, want ErrUnexpectedID", err)
		}
		_ = srv.result(t) // the server sees the client's alert
	})
	t.Run("caller not authorized", func(t *testing.T) {
		c, err := dial(t, srv.addr, west.Controller.ClientTLSConfig(east.GatewayID()))
		if err == nil && c.roundTrip("x") == nil {
			t.Fatal("controller identity reached a gateway-only listener")
		}
		if err := srv.result(t); !errors.Is(err, identity.ErrNotAuthorized) {
			t.Fatalf("server: %v, want ErrNotAuthorized", err)
		}
	})
	t.Run("own cluster refused", func(t *testing.T) {
		c, err := dial(t, srv.addr, east.Source(t, east.GatewayID()).ClientTLSConfig(east.GatewayID()))
		if err == nil && c.roundTrip("x") == nil {
			t.Fatal("local gateway identity accepted on ingress")
		}
		if err := srv.result(t); !errors.Is(err, identity.ErrNotAuthorized) {
			t.Fatalf("server: %v, want ErrNotAuthorized", err)
		}
	})
	t.Run("forged identity from a compromised cluster", func(t *testing.T) {
		// west's issuer mints a leaf claiming to be north's gateway.
		forged, err := identity.NewSource(west.ForgedLeaf(t, contract.GatewayID(mesh.Domain, "north")), mesh.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(t, srv.addr, forged.ClientTLSConfig(east.GatewayID()))
		if err == nil && c.roundTrip("x") == nil {
			t.Fatal("forged identity accepted")
		}
		if err := srv.result(t); !errors.Is(err, identity.ErrTrustDomainNotPermitted) {
			t.Fatalf("server: %v, want ErrTrustDomainNotPermitted", err)
		}
	})
	t.Run("foreign mesh", func(t *testing.T) {
		foreign := identitytest.NewMesh(t, "", "west").Clusters["west"]
		c, err := dial(t, srv.addr, foreign.Gateway.ClientTLSConfig(east.GatewayID()))
		if !errors.Is(err, identity.ErrUnknownAuthority) {
			t.Errorf("client verifying east with a foreign bundle: %v, want ErrUnknownAuthority", err)
		}
		if err == nil {
			_ = c.roundTrip("x")
		}
		_ = srv.result(t)
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg := west.Gateway.ClientTLSConfig(east.GatewayID())
		cfg.GetClientCertificate = nil
		c, err := dial(t, srv.addr, cfg)
		if err == nil && c.roundTrip("x") == nil {
			t.Fatal("anonymous client accepted")
		}
		if err := srv.result(t); err == nil {
			t.Fatal("server accepted a client without a certificate")
		}
	})
}

func TestRotationTakesEffectOnNextHandshake(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	srv := startEchoServer(t, east.Gateway.ServerTLSConfig(nil))
	clientCfg := west.Gateway.ClientTLSConfig(east.GatewayID())

	before, err := dial(t, srv.addr, clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := before.roundTrip("before"); err != nil {
		t.Fatal(err)
	}
	oldSerial := before.conn.ConnectionState().PeerCertificates[0].SerialNumber

	if err := east.Gateway.SetCertificate(east.Leaf(t, east.GatewayID())); err != nil {
		t.Fatal(err)
	}
	newSerial := east.Gateway.Certificate().Leaf.SerialNumber

	after, err := dial(t, srv.addr, clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := after.roundTrip("after"); err != nil {
		t.Fatal(err)
	}
	if got := after.conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(newSerial) != 0 || got.Cmp(oldSerial) == 0 {
		t.Fatalf("after rotation server presented serial %x, want new %x (old %x)", got, newSerial, oldSerial)
	}
	if err := before.roundTrip("still here"); err != nil {
		t.Fatalf("existing connection cut by rotation: %v", err)
	}
}

func TestBundleRootRotation(t *testing.T) {
	oldMesh := identitytest.NewMesh(t, "", "east", "west")
	newMesh := identitytest.NewMesh(t, "", "west")
	east := oldMesh.Clusters["east"]
	oldWest, newWest := oldMesh.Clusters["west"], newMesh.Clusters["west"]

	both, err := identity.NewBundle(oldMesh.Domain, oldMesh.Root.Cert, newMesh.Root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := east.Gateway.SetBundle(both); err != nil {
		t.Fatal(err)
	}
	srv := startEchoServer(t, east.Gateway.ServerTLSConfig(nil))
	connect := func(src *identity.Source) error {
		if err := src.SetBundle(both); err != nil { // the client must trust east's old root
			t.Fatal(err)
		}
		c, err := dial(t, srv.addr, src.ClientTLSConfig(east.GatewayID()))
		if err == nil {
			err = c.roundTrip("ping")
		}
		if serr := srv.result(t); serr != nil {
			return serr
		}
		return err
	}
	if err := connect(oldWest.Gateway); err != nil {
		t.Fatalf("old root with both roots trusted: %v", err)
	}
	if err := connect(newWest.Gateway); err != nil {
		t.Fatalf("new root with both roots trusted: %v", err)
	}

	onlyNew, err := identity.NewBundle(oldMesh.Domain, newMesh.Root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := east.Gateway.SetBundle(onlyNew); err != nil {
		t.Fatal(err)
	}
	if err := connect(oldWest.Gateway); !errors.Is(err, identity.ErrUnknownAuthority) {
		t.Fatalf("old root after removal: %v, want ErrUnknownAuthority", err)
	}
	if err := connect(newWest.Gateway); err != nil {
		t.Fatalf("new root after removing the old one: %v", err)
	}
}

// Every connection must be a full handshake against the current leaf and
// bundle; a resumed session would skip presenting a rotated certificate.
func TestServerDoesNotResumeSessions(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	srv := startEchoServer(t, east.Gateway.ServerTLSConfig(nil))
	cfg := west.Gateway.ClientTLSConfig(east.GatewayID())
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		c, err := dial(t, srv.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.roundTrip("x"); err != nil { // tickets arrive after the handshake
			t.Fatal(err)
		}
		if c.conn.ConnectionState().DidResume {
			t.Fatalf("connection %d resumed a session", i)
		}
		_ = srv.result(t)
	}
}
