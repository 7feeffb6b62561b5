package importer_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/importer"
)

// serveTLS runs a listener that completes handshakes as src would on the
// gateway's ingress port.
func serveTLS(t *testing.T, src *identity.Source, allow ...func(identity.ID) error) string {
	t.Helper()
	var a func(identity.ID) error
	if len(allow) > 0 {
		a = allow[0]
	}
	cfg := src.ServerTLSConfig(a)
	cfg.NextProtos = []string{importer.ProbeALPN}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTLSProber(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Cluster(t, "east"), mesh.Cluster(t, "west")
	gw := serveTLS(t, east.Gateway)
	impostor := serveTLS(t, east.Controller) // right mesh, wrong identity
	foreign := serveTLS(t, identitytest.NewMesh(t, "", "east").Cluster(t, "east").Gateway)
	refusing := serveTLS(t, east.Gateway, func(identity.ID) error { return errors.New("not you") })
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()

	p := importer.TLSProber{Source: west.Controller}
	cases := []struct {
		name  string
		addrs []string
		ok    bool
	}{
		{"the remote gateway", []string{gw}, true},
		{"fails over to the next address", []string{closed, gw}, true},
		{"nothing listening", []string{closed}, false},
		{"wrong identity", []string{impostor}, false},
		{"foreign mesh root", []string{foreign}, false},
		{"the gateway refuses this controller", []string{refusing}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := p.Probe(ctx, importer.ProbeTarget{Addresses: tc.addrs, Identity: east.GatewayID()})
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
