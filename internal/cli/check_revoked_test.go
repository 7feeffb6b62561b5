package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// fakeGateway serves TLS with a gateway leaf from issuer, asking for a
// client certificate as Ferry's gateway does, and closes every connection.
func fakeGateway(t *testing.T, issuer *identity.CA, cluster string) string {
	t.Helper()
	leaf, err := issuer.IssueLeaf(contract.GatewayID(contract.DefaultMeshDomain, cluster), 0)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*leaf}, ClientAuth: tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// closedAddr is a local address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// A Link whose gateway chains through an issuer on this cluster's deny
// list is a fatal finding that names it; a Link to a cluster whose issuer
// is not revoked, and one whose gateway cannot be reached, are not.
func TestCheckReportsRevokedLinks(t *testing.T) {
	c := clusterClient(t, checked)
	ensureNamespace(t, c, contract.SystemNamespace)
	p := newRevocationPKI(t)
	west, err := p.root.NewIssuer(importer, 0)
	if err != nil {
		t.Fatal(err)
	}
	sec := issuerSecret(t, p.north, p.root)
	sec.Data[certsecret.RevokedKey] = identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(p.east.Cert, "cluster=east")})
	create(t, c, sec)
	createLink(t, c, exporter, nil, fakeGateway(t, p.east, exporter))
	createLink(t, c, importer, nil, fakeGateway(t, west, importer))
	createLink(t, c, "south", nil, closedAddr(t))

	out, _, _ := ferryOn(t, checked, "check", "-o", "json")
	var rep CheckReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got *CheckResult
	for i := range rep.Checks {
		if rep.Checks[i].Name == "Link gateways are not revoked" {
			got = &rep.Checks[i]
		}
	}
	if got == nil {
		t.Fatalf("no revocation check in %+v", rep.Checks)
	}
	if got.Status != statusFailed || got.Severity != SeverityFatal {
		t.Fatalf("check %s/%s: %s", got.Status, got.Severity, got.Error)
	}
	if !strings.Contains(got.Error, "link east:") || !strings.Contains(got.Error, identity.RevocationOf(p.east.Cert, "").Fingerprint()) {
		t.Errorf("error does not name east and its revoked key: %s", got.Error)
	}
	if strings.Contains(got.Error, "link west") || strings.Contains(got.Error, "link south") {
		t.Errorf("reported a Link that is not revoked: %s", got.Error)
	}
	if !strings.Contains(got.Hint, "ferry identity issuer --cluster") {
		t.Errorf("hint does not say what to do: %s", got.Hint)
	}
}

// A deny list the controller would refuse makes the issuer check fail:
// the controller then issues nothing, and the check must not say "valid".
func TestCheckIssuerRefusesBadDenyList(t *testing.T) {
	c := healthyNorth(t)
	s := getIssuerSecret(t, c)
	s.Data[certsecret.RevokedKey] = []byte("sha256:typo\n")
	if err := c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	out := failingCheck(t)
	if want := "✘ issuer certificate is valid\n    the Secret ferry-system/ferry-issuer: certsecret: revoked.txt: deny list line 1"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
