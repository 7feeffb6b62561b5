package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestIssuerNameConstraints(t *testing.T) {
	mesh := identitytest.NewMesh(t, "ferry.local", "east")
	c := mesh.Clusters["east"].Issuer.Cert
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("issuer IsCA=%v MaxPathLen=%d zero=%v; want a CA that signs only leaves", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if got := c.PermittedURIDomains; len(got) != 1 || got[0] != "east.ferry.local" {
		t.Errorf("permitted URI domains %q, want [east.ferry.local]", got)
	}
	if !c.PermittedDNSDomainsCritical {
		t.Error("name constraints must be critical, or a verifier that ignores them could accept anything")
	}
	if len(c.ExcludedDNSDomains) != 1 || len(c.ExcludedEmailAddresses) != 1 || len(c.ExcludedIPRanges) != 2 {
		t.Errorf("DNS, email and IP SANs must all be excluded: dns=%q email=%q ip=%v",
			c.ExcludedDNSDomains, c.ExcludedEmailAddresses, c.ExcludedIPRanges)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("issuer key %v, want ECDSA P-256", c.PublicKeyAlgorithm)
	}
	if r := mesh.Root.Cert; r.MaxPathLen != 1 || len(r.PermittedURIDomains) != 1 || r.PermittedURIDomains[0] != ".ferry.local" {
		t.Errorf("root MaxPathLen=%d permitted=%q", r.MaxPathLen, r.PermittedURIDomains)
	}
}

// TestGoVerifierEnforcesIssuerConstraints proves, with crypto/x509 alone
// and none of Ferry's own checks, that east's issuer cannot vouch for west or
// for any DNS name, IP or email.
func TestGoVerifierEnforcesIssuerConstraints(t *testing.T) {
	mesh := identitytest.NewMesh(t, "ferry.local", "east", "west")
	east, west := mesh.Clusters["east"], mesh.Clusters["west"]
	roots := x509.NewCertPool()
	roots.AddCert(mesh.Root.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(east.Issuer.Cert)
	goVerify := func(leaf *tls.Certificate) error {
		_, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}

	if err := goVerify(east.Leaf(t, east.GatewayID())); err != nil {
		t.Fatalf("east leaf under east issuer: %v", err)
	}
	forged := []struct {
		name string
		spec identitytest.Spec
	}{
		{"west identity", identitytest.Spec{URIs: []string{west.GatewayID().String()}}},
		{"sub-domain of east", identitytest.Spec{URIs: []string{"spiffe://x.east.ferry.local/ns/a/sa/b"}}},
		{"DNS name", identitytest.Spec{URIs: []string{east.GatewayID().String()}, DNSNames: []string{"bank.example.com"}}},
	}
	for _, tc := range forged {
		tc.spec.Parent = east.Issuer
		err := goVerify(identitytest.Mint(t, tc.spec))
		var ci x509.CertificateInvalidError
		if !errors.As(err, &ci) || ci.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("%s: Go verifier returned %v, want CANotAuthorizedForThisName", tc.name, err)
		}
	}
	// IPs and emails go through CreateCertificate's own SAN encoding.
	for name, mut := range map[string]func(*x509.Certificate){
		"IP":    func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.ParseIP("10.0.0.1")} },
		"email": func(c *x509.Certificate) { c.EmailAddresses = []string{"ceo@bank.example.com"} },
	} {
		leaf := signWith(t, east.Issuer, mut)
		err := goVerify(leaf)
		var ci x509.CertificateInvalidError
		if !errors.As(err, &ci) || ci.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("%s SAN: Go verifier returned %v, want CANotAuthorizedForThisName", name, err)
		}
	}
}

func signWith(t *testing.T, ca *identity.CA, mut func(*x509.Certificate)) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), randReader{})
	u, _ := url.Parse("spiffe://east.ferry.local/ns/a/sa/b")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{u}}
	mut(tmpl)
	der, err := x509.CreateCertificate(randReader{}, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, Leaf: leaf, PrivateKey: key}
}

func TestLeafProperties(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	root, err := identity.NewRoot("ferry.local", 0, identity.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := root.NewIssuer("east", 0)
	if err != nil {
		t.Fatal(err)
	}
	id := contract.GatewayID("ferry.local", "east")
	c, err := issuer.IssueLeaf(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		t.Errorf("URIs %v, want exactly [%s]", leaf.URIs, id)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Error("leaf carries SANs other than its URI")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v, want digitalSignature only", leaf.KeyUsage)
	}
	if fmt.Sprint(leaf.ExtKeyUsage) != fmt.Sprint([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("EKU %v, want serverAuth+clientAuth", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if got := leaf.NotAfter.Sub(now); got != identity.DefaultLeafTTL {
		t.Errorf("lifetime from now %s, want %s", got, identity.DefaultLeafTTL)
	}
	if !leaf.NotBefore.Before(now) || now.Sub(leaf.NotBefore) > identity.MaxBackdate {
		t.Errorf("NotBefore %s: want backdated by at most %s from %s", leaf.NotBefore, identity.MaxBackdate, now)
	}
	if len(c.Certificate) != 2 || !issuer.Cert.Equal(mustParse(t, c.Certificate[1])) {
		t.Error("chain must be leaf then issuer")
	}
	if k, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key %T, want ECDSA P-256", c.PrivateKey)
	}

	// Serials: positive, unique, at most 128 bits, and not small numbers.
	seen := map[string]bool{}
	wide := 0
	for range 64 {
		c, err := issuer.IssueLeaf(id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		s := c.Leaf.SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 128 || seen[s.String()] {
			t.Fatalf("bad serial %x", s)
		}
		seen[s.String()] = true
		if s.BitLen() > 120 {
			wide++
		}
	}
	if wide < 32 {
		t.Errorf("only %d/64 serials use more than 120 bits; serials are not 128-bit random", wide)
	}
}

func TestIssuanceLimits(t *testing.T) {
	now := time.Now()
	root, err := identity.NewRoot("ferry.local", 48*time.Hour, identity.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.NewIssuer("east", 72*time.Hour); !errors.Is(err, identity.ErrCAValidity) {
		t.Errorf("issuer outliving root: %v, want ErrCAValidity", err)
	}
	issuer, err := root.NewIssuer("east", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := issuer.IssueLeaf(contract.GatewayID("ferry.local", "east"), 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.Equal(issuer.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %s, want clamped to issuer's %s", c.Leaf.NotAfter, issuer.Cert.NotAfter)
	}
	if _, err := issuer.IssueLeaf(contract.GatewayID("ferry.local", "west"), 0); !errors.Is(err, identity.ErrTrustDomainNotPermitted) {
		t.Errorf("east issuing for west: %v, want ErrTrustDomainNotPermitted", err)
	}
	if _, err := root.IssueLeaf(contract.GatewayID("ferry.local", "east"), 0); !errors.Is(err, identity.ErrNotAnIssuer) {
		t.Errorf("root issuing a leaf: %v, want ErrNotAnIssuer", err)
	}
	if _, err := issuer.IssueLeaf(identity.ID{MeshDomain: "ferry.local", Cluster: "east", Namespace: "Bad_NS", ServiceAccount: "x"}, 0); !errors.Is(err, identity.ErrInvalidID) {
		t.Errorf("invalid namespace: %v, want ErrInvalidID", err)
	}
	if _, err := identity.NewRoot("Not A Domain", 0); !errors.Is(err, identity.ErrInvalidID) {
		t.Errorf("bad mesh domain: %v", err)
	}
	if _, err := root.NewIssuer("East", 0); err == nil {
		t.Error("uppercase cluster name accepted")
	}
}

func TestCANeverPrintsKey(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	ca := mesh.Clusters["east"].Issuer
	raw, err := ca.Key.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d := new(big.Int).SetBytes(raw).String()
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("ca", "ca", ca)
	for _, out := range []string{fmt.Sprint(ca), fmt.Sprintf("%v %+v %#v %s", ca, ca, ca, ca), logged.String()} {
		if strings.Contains(out, d) || strings.Contains(out, "D:") {
			t.Fatalf("CA formatting leaks the private key: %s", out)
		}
		if !strings.Contains(out, "ferry issuer east.ferry.local") {
			t.Fatalf("CA formatting lost its description: %s", out)
		}
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
