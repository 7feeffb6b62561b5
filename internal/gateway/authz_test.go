package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// rawSession speaks the tunnel protocol by hand, so tests can send what a
// well-behaved egress never would.
func rawSession(t *testing.T, addr string, cfg *tls.Config) (*yamux.Session, error) {
	t.Helper()
	cfg.NextProtos = []string{tunnel.ALPNTunnel}
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	yc := yamux.DefaultConfig()
	yc.LogOutput = io.Discard
	s, err := yamux.Client(tc, yc, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

// rawStream sends header bytes plus a payload and returns ingress's reply.
func rawStream(t *testing.T, s *yamux.Session, header []byte) error {
	t.Helper()
	st, err := s.OpenStream(context.Background())
	if err != nil {
		return err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(3 * time.Second))
	// Payload right after the header: a rejected stream must not forward it.
	if _, err := st.Write(append(header, []byte("GET /secrets HTTP/1.0\r\n\r\n")...)); err != nil {
		return err
	}
	return tunnel.ReadReply(st)
}

func encode(tg tunnel.Target) []byte {
	var b bytes.Buffer
	_ = tunnel.WriteHeader(&b, tg)
	return b.Bytes()
}

func TestAuthorizationMatrix(t *testing.T) {
	p := newPair(t, pairOpts{})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	p.export("limited", []string{"north"}, be.addr())
	// Endpoints exist for everything a sloppy implementation might resolve
	// a hostile target to, so a leak would reach the backend.
	for _, svc := range []string{"secret", "Echo", "echo.", "ECHO", "echo.default.svc.cluster.local", "127.0.0.1"} {
		p.endpoints.Set("default", svc, 80, []string{be.addr()})
	}
	p.endpoints.Set("default", "echo", 81, []string{be.addr()})
	p.endpoints.Set("Default", "echo", 80, []string{be.addr()})

	sess, err := rawSession(t, p.inAddr, p.west.Gateway.ClientTLSConfig(p.east.GatewayID()))
	if err != nil {
		t.Fatal(err)
	}
	ns := "default"
	streamCases := []struct {
		name   string
		header []byte
		status tunnel.Status
		reason string
	}{
		{"not exported", encode(tunnel.Target{Namespace: ns, Service: "secret", Port: 80}), tunnel.StatusDenied, ReasonNotExported},
		{"export limited to another cluster", encode(tunnel.Target{Namespace: ns, Service: "limited", Port: 80}), tunnel.StatusDenied, ReasonClusterNotAllowed},
		{"port not in service", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 81}), tunnel.StatusDenied, ReasonUnknownPort},
		{"upper-case service", encode(tunnel.Target{Namespace: ns, Service: "Echo", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"all caps", encode(tunnel.Target{Namespace: ns, Service: "ECHO", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"upper-case namespace", encode(tunnel.Target{Namespace: "Default", Service: "echo", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"trailing dot", encode(tunnel.Target{Namespace: ns, Service: "echo.", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"fqdn", encode(tunnel.Target{Namespace: ns, Service: "echo.default.svc.cluster.local", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"ip literal", encode(tunnel.Target{Namespace: ns, Service: "127.0.0.1", Port: 80}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"port zero", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 0}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		// echo is a ClusterSetIP export: it has no pods by name.
		{"hostname on a ClusterSetIP export", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80, Hostname: "echo-0"}), tunnel.StatusDenied, ReasonUnknownHostname},
		{"upper-case hostname", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80, Hostname: "Echo-0"}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"hostname with a dot", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80, Hostname: "echo-0.echo"}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"ip literal hostname", encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80, Hostname: "127.0.0.1"}), tunnel.StatusInvalidTarget, ReasonInvalidTarget},
		{"version 2 with an empty hostname", []byte{0, 17, 2, 7, 'd', 'e', 'f', 'a', 'u', 'l', 't', 4, 'e', 'c', 'h', 'o', 0, 80, 0}, tunnel.StatusBadHeader, ReasonBadHeader},
		{"malformed header", []byte{0, 3, 9, 9, 9}, tunnel.StatusBadHeader, ReasonBadHeader},
		{"oversized header", binary.BigEndian.AppendUint16(nil, 4096), tunnel.StatusBadHeader, ReasonHeaderTooLarge},
	}
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			before := p.rejected(tc.reason)
			err := rawStream(t, sess, tc.header)
			var re *tunnel.RejectError
			if !errors.As(err, &re) || re.Status != tc.status {
				t.Fatalf("reply = %v, want %v", err, tc.status)
			}
			if got := p.rejected(tc.reason); got != before+1 {
				t.Fatalf("rejected{%s} = %v, want %v", tc.reason, got, before+1)
			}
			if n := be.accepted.Load(); n != 0 {
				t.Fatalf("backend accepted %d connections", n)
			}
		})
	}
	// A denial must not tell the caller which it was.
	t.Run("denials look alike", func(t *testing.T) {
		var msgs []string
		for _, tg := range []tunnel.Target{{Namespace: ns, Service: "secret", Port: 80}, {Namespace: ns, Service: "limited", Port: 80}, {Namespace: ns, Service: "echo", Port: 81}, {Namespace: ns, Service: "echo", Port: 80, Hostname: "echo-0"}} {
			var re *tunnel.RejectError
			if err := rawStream(t, sess, encode(tg)); !errors.As(err, &re) {
				t.Fatalf("%v: %v", tg, err)
			} else {
				msgs = append(msgs, re.Reason)
			}
		}
		if msgs[0] != msgs[1] || msgs[1] != msgs[2] || msgs[2] != msgs[3] {
			t.Fatalf("denials differ: %q", msgs)
		}
	})

	foreign := identitytest.NewMesh(t, "", "west").Cluster(t, "west")
	otherMesh := identitytest.NewMesh(t, "other.mesh", "west").Cluster(t, "west")
	connCases := []struct {
		name   string
		cfg    func() *tls.Config
		reason string
	}{
		{"caller without certificate", func() *tls.Config {
			return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		}, tunnel.ReasonNoClientCert},
		{"caller from a foreign root", func() *tls.Config {
			c := foreign.Gateway.ClientTLSConfig(p.east.GatewayID())
			c.VerifyConnection = nil // it would not trust east either; skip to reach the server's check
			return c
		}, tunnel.ReasonUntrustedPeer},
		{"caller from another mesh domain", func() *tls.Config {
			c := otherMesh.Gateway.ClientTLSConfig(p.east.GatewayID())
			c.VerifyConnection = nil
			return c
		}, tunnel.ReasonUntrustedPeer},
		{"controller identity opening a tunnel", func() *tls.Config {
			return p.west.Controller.ClientTLSConfig(p.east.GatewayID())
		}, tunnel.ReasonForbiddenIdentity},
		{"workload identity", func() *tls.Config {
			return p.west.Source(t, p.west.ID("default", "app")).ClientTLSConfig(p.east.GatewayID())
		}, tunnel.ReasonForbiddenIdentity},
		{"east's own gateway (hairpin)", func() *tls.Config {
			return p.east.Gateway.ClientTLSConfig(p.east.GatewayID())
		}, tunnel.ReasonForbiddenIdentity},
	}
	for _, tc := range connCases {
		t.Run(tc.name, func(t *testing.T) {
			before := p.rejected(tc.reason)
			s, err := rawSession(t, p.inAddr, tc.cfg())
			if err == nil {
				err = rawStream(t, s, encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80}))
			}
			if err == nil {
				t.Fatal("stream accepted")
			}
			testkit.EventuallyWithin(t, 2*time.Second, "rejection "+tc.reason, func() bool { return p.rejected(tc.reason) == before+1 })
			if n := be.accepted.Load(); n != 0 {
				t.Fatalf("backend accepted %d connections", n)
			}
		})
	}
	if b := be.bytes.Load(); b != 0 {
		t.Fatalf("backend received %d bytes from rejected streams", b)
	}

	// Control: the same session and backend do work for a permitted target,
	// so the zeros above mean something.
	if err := rawStream(t, sess, encode(tunnel.Target{Namespace: ns, Service: "echo", Port: 80})); err != nil {
		t.Fatalf("permitted target: %v", err)
	}
	testkit.EventuallyWithin(t, time.Second, "backend reached", func() bool { return be.accepted.Load() == 1 })
}

func TestExportAuthorizerFollowsTheSet(t *testing.T) {
	p := exports.NewPublisher()
	s := NewExportAuthorizer(p)
	caller := contract.GatewayID("ferry.local", "west")
	tg := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	if err := s.Authorize(caller, tg); !errors.Is(err, ErrExportsNotSynced) {
		t.Fatalf("set not synced yet: %v, want ErrExportsNotSynced", err)
	}
	p.Publish(nil, nil)
	if err := s.Authorize(caller, tg); !errors.Is(err, ErrNotExported) {
		t.Fatalf("synced, empty set: %v", err)
	}
	web := exports.TCP("default", "web", 80)
	p.Publish(exports.Of(web), nil)
	if err := s.Authorize(caller, tg); err != nil {
		t.Fatalf("exported: %v", err)
	}
	if err := s.Authorize(caller, tunnel.Target{Namespace: "default", Service: "web", Port: 81}); !errors.Is(err, ErrUnknownPort) {
		t.Fatalf("other port: %v", err)
	}
	// A number the export lists for UDP only is no port a stream may reach.
	web.Ports = append(web.Ports, exports.Port{Name: "dns", Protocol: "UDP", Port: 53})
	p.Publish(exports.Of(web), nil)
	if err := s.Authorize(caller, tunnel.Target{Namespace: "default", Service: "web", Port: 53}); !errors.Is(err, ErrUnknownPort) {
		t.Fatalf("UDP-only port: %v", err)
	}
	web.AllowedClusters = []string{}
	p.Publish(exports.Of(web), nil)
	if err := s.Authorize(caller, tg); !errors.Is(err, ErrClusterNotAllowed) {
		t.Fatalf("empty allow list: %v", err)
	}
	web.AllowedClusters = []string{"west"}
	p.Publish(exports.Of(web), nil)
	if err := s.Authorize(caller, tg); err != nil {
		t.Fatalf("allowed cluster: %v", err)
	}
	p.Publish(nil, nil)
	if err := s.Authorize(caller, tg); !errors.Is(err, ErrNotExported) {
		t.Fatalf("unexported: %v", err)
	}
}
