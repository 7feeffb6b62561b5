package issuer

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// gatewayLeaf parses and verifies the gateway Secret as a gateway would.
func gatewayLeaf(t *testing.T, s *corev1.Secret, want identity.ID, now ...func() time.Time) *tls.Certificate {
	t.Helper()
	cert, bundle, err := certsecret.Parse(s.Data, want.MeshDomain)
	if err != nil {
		t.Fatal(err)
	}
	var clock func() time.Time
	if len(now) > 0 {
		clock = now[0]
	}
	if _, err := certsecret.Verify(cert, bundle, want, clock); err != nil {
		t.Fatal(err)
	}
	return cert
}

func serialIn(t *testing.T, s *corev1.Secret) *big.Int {
	t.Helper()
	if s == nil {
		return nil
	}
	cert, _, err := certsecret.Parse(s.Data, contract.DefaultMeshDomain)
	if err != nil {
		return nil
	}
	return cert.Leaf.SerialNumber
}

// The issuer Secret in place: the gateway Secret appears with a leaf for
// the gateway's SPIFFE ID that chains to the bundle, the controller holds
// its own leaf, and a restart writes nothing.
func TestIssuesGatewaySecretAndRestartWritesNothing(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, east))

	kube := countingClient(t, c.RestConfig)
	r := start(t, kube, Options{Namespace: ns})
	var s *corev1.Secret
	testkit.Eventually(t, "gateway Secret", func() bool { s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); return s != nil })
	cert := gatewayLeaf(t, s, east.GatewayID())
	if !bytes.Equal(cert.Certificate[1], east.Issuer.Cert.Raw) {
		t.Error("chain does not carry the issuer")
	}
	if s.Type != corev1.SecretTypeTLS || s.Labels[LabelManagedBy] != ManagedByValue || s.Labels["app.kubernetes.io/component"] != "gateway" {
		t.Errorf("type %s labels %v", s.Type, s.Labels)
	}
	if !bytes.Equal(s.Data[certsecret.BundleKey], mesh.Bundle.PEM()) {
		t.Error("ca.crt is not the bundle")
	}
	if cond, ok := readCondition(s); !ok || cond.Status != metav1.ConditionTrue || cond.Reason != ReasonCurrent {
		t.Errorf("condition %+v", cond)
	}
	if life := lifetime(cert.Leaf); life < identity.DefaultLeafTTL || life > identity.DefaultLeafTTL+identity.MaxBackdate {
		t.Errorf("lifetime %s", life)
	}

	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	if id, err := r.Controller().ID(); err != nil || id != east.ControllerID() {
		t.Fatalf("controller id %v, %v", id, err)
	}
	if r.Controller().Bundle() == nil || !r.Controller().Bundle().Contains(mesh.Root.Cert) {
		t.Fatal("controller has no bundle")
	}
	// The metrics follow the write that made the Secret visible: wait for
	// them rather than race the issuer on a busy machine.
	testkit.Eventually(t, "gateway renewal counted", func() bool {
		return testutil.ToFloat64(r.metrics.renewals.WithLabelValues(certGateway)) >= 1 &&
			testutil.ToFloat64(r.metrics.expiry.WithLabelValues(certGateway)) != 0
	})
	for _, cert := range []string{certGateway, certController} {
		if n := testutil.ToFloat64(r.metrics.renewals.WithLabelValues(cert)); n != 1 {
			t.Errorf("%s renewals %v", cert, n)
		}
		if n := testutil.ToFloat64(r.metrics.expiring.WithLabelValues(cert)); n != 0 {
			t.Errorf("%s expiring %v", cert, n)
		}
	}
	if got := testutil.ToFloat64(r.metrics.expiry.WithLabelValues(certGateway)); got != float64(cert.Leaf.NotAfter.Unix()) {
		t.Errorf("gateway expiry %v", got)
	}
	waitEvent(t, ctx, c.Kube, ns, contract.GatewayTLSSecret, EventIssued)
	time.Sleep(200 * time.Millisecond) // let a stray second pass show itself
	if n := kube.writes.Load(); n != 1 {
		t.Fatalf("%d writes to create one Secret", n)
	}

	// A restart with everything valid writes nothing.
	r.stop()
	kube2 := countingClient(t, c.RestConfig)
	r2 := start(t, kube2, Options{Namespace: ns})
	testkit.Eventually(t, "restarted and passed", func() bool {
		return r2.Ready() == nil && testutil.CollectAndCount(r2.metrics.expiry) == 3
	})
	time.Sleep(200 * time.Millisecond)
	if n := kube2.writes.Load(); n != 0 {
		t.Fatalf("restart made %d writes", n)
	}
	if after := getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); after.ResourceVersion != s.ResourceVersion {
		t.Fatal("restart changed the gateway Secret")
	}
	if testutil.ToFloat64(r2.metrics.renewals.WithLabelValues(certGateway)) != 0 {
		t.Fatal("restart reissued the gateway leaf")
	}
}

// On a 3s lifetime the gateway Secret and the controller leaf are renewed
// before they expire, and a gateway serving from the Secret through
// certsecret presents the new leaf on its next handshake.
func TestRenewsShortLivedLeavesEndToEnd(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Cluster(t, "east"), mesh.Cluster(t, "west")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, east))
	const ttl = 3 * time.Second
	r := start(t, c.Kube, Options{Namespace: ns, LeafTTL: ttl})

	var first *corev1.Secret
	testkit.Eventually(t, "gateway Secret", func() bool { first = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); return first != nil })
	firstLeaf := gatewayLeaf(t, first, east.GatewayID()).Leaf
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	firstCtrl := r.Controller().Certificate().Leaf.SerialNumber

	// The gateway side: certsecret feeding a TLS server.
	loader, err := certsecret.NewLoader(c.Kube, certsecret.Options{Namespace: ns, Expect: east.GatewayID(), Logger: r.log})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = loader.Start(lctx) }()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", loader.Source().ServerTLSConfig(contract.AllowRemote("east", contract.GatewayServiceAccount)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	handshake := func() *big.Int {
		conn, err := tls.Dial("tcp", ln.Addr().String(), west.Gateway.ClientTLSConfig(east.GatewayID()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	testkit.Eventually(t, "loader ready", func() bool { return loader.Ready() == nil })
	if got := handshake(); got.Cmp(firstLeaf.SerialNumber) != 0 && loader.Source().Certificate().Leaf.SerialNumber.Cmp(got) != 0 {
		t.Fatalf("presented %x", got)
	}

	var renewed *big.Int
	testkit.Eventually(t, "gateway renewal", func() bool {
		renewed = serialIn(t, getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret))
		return renewed != nil && renewed.Cmp(firstLeaf.SerialNumber) != 0
	})
	if now := time.Now(); !now.Before(firstLeaf.NotAfter) {
		t.Fatalf("renewed only at %s, first leaf expired at %s", now, firstLeaf.NotAfter)
	}
	testkit.Eventually(t, "handshake with the renewed leaf", func() bool { return handshake().Cmp(firstLeaf.SerialNumber) != 0 })
	testkit.Eventually(t, "controller renewal", func() bool {
		return r.Controller().Certificate().Leaf.SerialNumber.Cmp(firstCtrl) != 0
	})
	if r.Ready() != nil || testutil.ToFloat64(r.metrics.failures.WithLabelValues(certGateway)) != 0 {
		t.Fatalf("ready %v, failures %v", r.Ready(), testutil.ToFloat64(r.metrics.failures.WithLabelValues(certGateway)))
	}
}

// Only the elected replica writes the gateway Secret; every replica holds
// its controller leaf.
func TestWaitsForElectionBeforeWriting(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, mesh.Cluster(t, "east")))
	elected := make(chan struct{})
	r := start(t, c.Kube, Options{Namespace: ns, Elected: elected})
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	time.Sleep(200 * time.Millisecond)
	if getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil {
		t.Fatal("wrote the gateway Secret before being elected")
	}
	close(elected)
	testkit.Eventually(t, "gateway Secret", func() bool { return getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil })
}

// A bundle change rewrites ca.crt only; a new issuer reissues both leaves.
func TestFollowsIssuerSecretChanges(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	data := issuerData(t, east)
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	r := start(t, c.Kube, Options{Namespace: ns})
	var s *corev1.Secret
	testkit.Eventually(t, "gateway Secret", func() bool { s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); return s != nil })
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	serial := serialIn(t, s)
	ctrl := r.Controller().Certificate().Leaf.SerialNumber

	// Root rotation, step 1: the bundle gains a second root.
	next := identitytest.NewMesh(t, "", "east")
	two, err := identity.NewBundle(mesh.Domain, mesh.Root.Cert, next.Root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	data[certsecret.BundleKey] = two.PEM()
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	testkit.Eventually(t, "bundle in the gateway Secret", func() bool {
		s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
		return bytes.Equal(s.Data[certsecret.BundleKey], two.PEM())
	})
	if serialIn(t, s).Cmp(serial) != 0 {
		t.Fatal("a bundle change reissued the leaf")
	}
	testkit.Eventually(t, "bundle in the controller", func() bool { return r.Controller().Bundle().Contains(next.Root.Cert) })
	if r.Controller().Certificate().Leaf.SerialNumber.Cmp(ctrl) != 0 {
		t.Fatal("a bundle change reissued the controller leaf")
	}

	// A new issuer (same root): both leaves are reissued from it.
	issuer2, err := mesh.Root.NewIssuer("east", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := issuer2.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	data[certsecret.CertKey], data[certsecret.KeyKey] = issuer2.CertPEM(), key
	c.PutSecret(t, ns, contract.IssuerSecret, data)
	testkit.Eventually(t, "leaf from the new issuer", func() bool {
		s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
		cert, _, err := certsecret.Parse(s.Data, mesh.Domain)
		return err == nil && bytes.Equal(cert.Certificate[1], issuer2.Cert.Raw)
	})
	testkit.Eventually(t, "controller leaf from the new issuer", func() bool {
		return r.Controller().Certificate().Leaf.CheckSignatureFrom(issuer2.Cert) == nil
	})
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerLoaded)
}

// A Secret by the gateway's name that Ferry did not create is left alone.
func TestDoesNotAdoptForeignSecret(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, mesh.Cluster(t, "east")))
	c.PutSecret(t, ns, contract.GatewayTLSSecret, map[string][]byte{"note": []byte("someone else's")})
	before := getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
	r := start(t, c.Kube, Options{Namespace: ns})
	waitEvent(t, ctx, c.Kube, ns, contract.GatewayTLSSecret, EventNotManaged)
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	if after := getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); after.ResourceVersion != before.ResourceVersion {
		t.Fatal("foreign Secret changed")
	}
	if n := testutil.ToFloat64(r.metrics.failures.WithLabelValues(certGateway)); n != 1 {
		t.Fatalf("failures %v", n)
	}
}
