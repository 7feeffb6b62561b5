package certsecret

import (
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func serialOf(src *identity.Source) *big.Int {
	if c := src.Certificate(); c != nil {
		return c.Leaf.SerialNumber
	}
	return nil
}

// echoServer serves TLS with cfg and echoes what it reads.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
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
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func dialSerial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, *big.Int) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, conn.ConnectionState().PeerCertificates[0].SerialNumber
}

func ping(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// A rotated Secret reaches the Source, and a TLS server built on it
// presents the new leaf on the next handshake without cutting the old
// connection.
func TestLoaderFollowsRotation(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east", "west")
	east, west := mesh.Cluster(t, "east"), mesh.Cluster(t, "west")
	first := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, first, mesh.Bundle))

	l, reg := startLoader(t, c.Kube, Options{Namespace: ns, Expect: east.GatewayID()})
	testkit.Eventually(t, "ready", func() bool { return l.Ready() == nil })
	// Ready follows the Source, and the loader sets the expiry gauge only
	// after it has stored the certificate there.
	testkit.Eventually(t, "expiry metric set", func() bool { return testutil.ToFloat64(l.metrics.expiry) != 0 })
	if got := testutil.ToFloat64(l.metrics.expiry); got != float64(first.Leaf.NotAfter.Unix()) {
		t.Errorf("expiry metric %v, want %d", got, first.Leaf.NotAfter.Unix())
	}
	if n, err := testutil.GatherAndCount(reg, "ferry_certificate_expiry_timestamp_seconds"); err != nil || n != 1 {
		t.Errorf("gathered %d expiry series, %v", n, err)
	}

	addr := echoServer(t, l.Source().ServerTLSConfig(contract.AllowRemote("east", contract.GatewayServiceAccount)))
	client := west.Gateway.ClientTLSConfig(east.GatewayID())
	old, serial := dialSerial(t, addr, client)
	if serial.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatalf("presented %x, want %x", serial, first.Leaf.SerialNumber)
	}
	ping(t, old)

	second := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, second, mesh.Bundle))
	testkit.Eventually(t, "rotation", func() bool { return serialOf(l.Source()).Cmp(second.Leaf.SerialNumber) == 0 })
	if _, serial := dialSerial(t, addr, client); serial.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Fatalf("after rotation presented %x, want %x", serial, second.Leaf.SerialNumber)
	}
	ping(t, old) // the connection made with the first leaf is still up

	// A change to annotations only does not reload anything.
	before := l.Source().Certificate()
	s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, contract.GatewayTLSSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Annotations = map[string]string{"example.com/touched": "yes"}
	if _, err := c.Kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A later data change proves the annotation update was processed first.
	third := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, third, mesh.Bundle))
	testkit.Eventually(t, "third", func() bool { return serialOf(l.Source()).Cmp(third.Leaf.SerialNumber) == 0 })
	if before == l.Source().Certificate() {
		t.Fatal("third leaf not stored")
	}
	if got := testutil.ToFloat64(l.metrics.rejected); got != 0 {
		t.Fatalf("rejected %v", got)
	}
}

// Each kind of bad update is refused and the good certificate stays.
func TestLoaderKeepsGoodCertificateOnBadUpdate(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	good := east.Leaf(t, east.GatewayID())
	goodData := leafData(t, good, mesh.Bundle)
	c.PutSecret(t, ns, contract.GatewayTLSSecret, goodData)
	logs := &testenv.SyncBuffer{}
	l, _ := startLoader(t, c.Kube, Options{Namespace: ns, Expect: east.GatewayID(), Logger: quietLogger(logs)})
	testkit.Eventually(t, "ready", func() bool { return l.Ready() == nil })

	other := east.Leaf(t, east.GatewayID())
	foreign := identitytest.NewMesh(t, "", "east").Cluster(t, "east")
	otherMesh := identitytest.NewMesh(t, "other.example", "east")
	with := func(k string, v []byte) map[string][]byte {
		d := map[string][]byte{CertKey: goodData[CertKey], KeyKey: goodData[KeyKey], BundleKey: goodData[BundleKey]}
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return d
	}
	_, otherKey, _ := identity.EncodeLeafPEM(other)
	cases := []struct {
		name string
		data map[string][]byte
		want error // nil: any error
	}{
		{"garbage chain", with(CertKey, []byte("not a certificate")), identity.ErrInvalidPEM},
		{"key of another leaf", with(KeyKey, otherKey), identity.ErrKeyMismatch},
		{"key where the chain belongs", with(CertKey, append(append([]byte{}, goodData[CertKey]...), otherKey...)), identity.ErrKeyInCertPEM},
		{"no bundle", with(BundleKey, nil), nil},
		{"bundle of another mesh", with(BundleKey, otherMesh.Bundle.PEM()), identity.ErrMeshMismatch},
		{"leaf from a foreign root", leafData(t, foreign.Leaf(t, east.GatewayID()), mesh.Bundle), identity.ErrUnknownAuthority},
		{"controller leaf, not the gateway's", leafData(t, east.Leaf(t, east.ControllerID()), mesh.Bundle), identity.ErrUnexpectedID},
		{"expired leaf", leafData(t, east.ExpiredLeaf(t, east.GatewayID()), mesh.Bundle), identity.ErrExpired},
		{"empty", map[string][]byte{}, nil},
	}
	for n, tc := range cases {
		c.PutSecret(t, ns, contract.GatewayTLSSecret, tc.data)
		testkit.Eventually(t, tc.name+" refused", func() bool { return testutil.ToFloat64(l.metrics.rejected) == float64(n+1) })
		if serialOf(l.Source()).Cmp(good.Leaf.SerialNumber) != 0 {
			t.Fatalf("%s: certificate replaced", tc.name)
		}
		if err := l.Ready(); err != nil {
			t.Fatalf("%s: not ready: %v", tc.name, err)
		}
		l.mu.Lock()
		err := l.lastErr
		l.mu.Unlock()
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	// Deleting the Secret keeps the certificate too.
	if err := c.Kube.CoreV1().Secrets(ns).Delete(ctx, contract.GatewayTLSSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The watcher's cache shows the deletion before the loader has acted on
	// it: wait for the loader's own record of it, so that the checks below
	// see what it did.
	testkit.Eventually(t, "deletion seen", func() bool {
		err := lastErr(l)
		return l.w.Secret() == nil && err != nil && err.Error() == "secret not found"
	})
	if serialOf(l.Source()).Cmp(good.Leaf.SerialNumber) != 0 || l.Ready() != nil {
		t.Fatal("certificate lost with the Secret")
	}
	// And a good one is taken again.
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, other, mesh.Bundle))
	testkit.Eventually(t, "recovery", func() bool { return serialOf(l.Source()).Cmp(other.Leaf.SerialNumber) == 0 })
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatal("key material in the logs")
	}
	if !strings.Contains(logs.String(), "refused certificate secret") {
		t.Fatal("refusals not logged")
	}
}

func TestLoaderNotReadyWithoutSecret(t *testing.T) {
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	l, _ := startLoader(t, c.Kube, Options{Namespace: ns})
	testkit.Eventually(t, "synced", l.w.HasSynced)
	if err := l.Ready(); err == nil {
		t.Fatal("ready without a certificate")
	}
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle))
	testkit.Eventually(t, "ready", func() bool { return l.Ready() == nil })
	if id, err := l.Source().ID(); err != nil || id != east.GatewayID() {
		t.Fatalf("id %v, %v", id, err)
	}
	if l.Source().Bundle() == nil {
		t.Fatal("no bundle")
	}
}
