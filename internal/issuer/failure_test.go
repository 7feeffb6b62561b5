package issuer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

func conditionOf(t *testing.T, ctx context.Context, ns string) metav1.Condition {
	t.Helper()
	cond, _ := readCondition(getSecret(t, ctx, shared.Cluster(t).Kube, ns, contract.GatewayTLSSecret))
	return cond
}

// No issuer, then a broken one, then a good one: the process keeps going,
// reports each state, and issues as soon as it can.
func TestMissingAndInvalidIssuer(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	r := start(t, c.Kube, Options{Namespace: ns})

	e := waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerMissing)
	if e.Type != corev1.EventTypeWarning || e.ReportingController != ReportingController {
		t.Errorf("event %s from %s", e.Type, e.ReportingController)
	}
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, "ControllerCertificateMissing")
	testkit.Eventually(t, "failures counted", func() bool {
		return testutil.ToFloat64(r.metrics.failures.WithLabelValues(certController)) >= 1 &&
			testutil.ToFloat64(r.metrics.failures.WithLabelValues(certGateway)) >= 1
	})
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("ready: %v", err)
	}
	if testutil.ToFloat64(r.metrics.expiring.WithLabelValues(certController)) != 1 {
		t.Error("a missing controller leaf is not reported as expiring")
	}
	if getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil {
		t.Fatal("gateway Secret without an issuer")
	}

	// Garbage, and another cluster's issuer: both invalid, with reasons.
	mesh := identitytest.NewMesh(t, "", "east", "west")
	c.PutSecret(t, ns, contract.IssuerSecret, map[string][]byte{
		certsecret.CertKey: []byte("junk"), certsecret.KeyKey: []byte("junk"), certsecret.BundleKey: []byte("junk"),
	})
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerInvalid)
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, mesh.Cluster(t, "west")))
	testkit.Eventually(t, "wrong cluster reported", func() bool {
		list, _ := c.Kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		for _, e := range list.Items {
			if e.Reason == EventIssuerInvalid && strings.Contains(e.Note, "issuer is for west.ferry.local") {
				return true
			}
		}
		return false
	})
	if getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil {
		t.Fatal("gateway Secret from another cluster's issuer")
	}

	// The right issuer: issued at once, through the watch.
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, mesh.Cluster(t, "east")))
	testkit.Eventually(t, "gateway Secret", func() bool { return getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil })
	testkit.Eventually(t, "ready", func() bool { return r.Ready() == nil })
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerLoaded)
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, "ControllerCertificateRenewed")
	if testutil.ToFloat64(r.metrics.expiring.WithLabelValues(certController)) != 0 {
		t.Error("still expiring")
	}
	if strings.Contains(r.logs.String(), "junk") {
		t.Error("Secret content in the log")
	}
}

// With the issuer gone, a due leaf turns RenewalFailing, then Expiring at
// a sixth of its life left, then Expired, in the condition, the metrics
// and Events; the issuer's return renews it. A fake clock runs the hours.
func TestExpiringWithoutRenewal(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, east))
	clk := clocktesting.NewFakeClock(time.Now())
	const ttl = time.Hour
	r := start(t, c.Kube, Options{Namespace: ns, LeafTTL: ttl, Clock: clk})
	var s *corev1.Secret
	testkit.Eventually(t, "gateway Secret", func() bool { s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret); return s != nil })
	testkit.Eventually(t, "ready", func() bool { return r.Ready() == nil })
	leaf := gatewayLeaf(t, s, east.GatewayID()).Leaf

	if err := c.Kube.CoreV1().Secrets(ns).Delete(ctx, contract.IssuerSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerMissing)
	if got := conditionOf(t, ctx, ns); got.Reason != ReasonCurrent {
		t.Fatalf("not due yet, condition %+v", got)
	}

	steps := []struct {
		at     time.Time
		reason string
		event  string
		gauge  float64
	}{
		{leaf.NotAfter.Add(-lifetime(leaf) / 4), ReasonRenewalFailing, "CertificateRenewalFailing", 0},
		{leaf.NotAfter.Add(-lifetime(leaf) / 8), ReasonExpiring, "CertificateExpiring", 1},
		{leaf.NotAfter.Add(time.Second), ReasonExpired, "CertificateExpired", 1},
	}
	for _, st := range steps {
		clk.SetTime(st.at)
		testkit.Eventually(t, st.reason, func() bool { return conditionOf(t, ctx, ns).Reason == st.reason })
		if cond := conditionOf(t, ctx, ns); cond.Status != metav1.ConditionFalse || cond.Message == "" {
			t.Errorf("%s: condition %+v", st.reason, cond)
		}
		e := waitEvent(t, ctx, c.Kube, ns, contract.GatewayTLSSecret, st.event)
		if e.Type != corev1.EventTypeWarning {
			t.Errorf("%s is %s", st.event, e.Type)
		}
		waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, "Controller"+st.event)
		for _, cert := range []string{certGateway, certController} {
			if got := testutil.ToFloat64(r.metrics.expiring.WithLabelValues(cert)); got != st.gauge {
				t.Errorf("%s: %s expiring %v, want %v", st.reason, cert, got, st.gauge)
			}
			if testutil.ToFloat64(r.metrics.failures.WithLabelValues(cert)) < 1 {
				t.Errorf("%s: no %s renewal failure counted", st.reason, cert)
			}
		}
	}
	if r.Ready() == nil {
		t.Error("ready with an expired controller leaf")
	}

	// The issuer returns: both leaves are renewed and the condition clears.
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, east))
	testkit.Eventually(t, "renewed", func() bool { return conditionOf(t, ctx, ns).Reason == ReasonCurrent })
	s = getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
	next := gatewayLeaf(t, s, east.GatewayID(), clk.Now).Leaf
	if next.SerialNumber.Cmp(leaf.SerialNumber) == 0 || !next.NotAfter.After(clk.Now()) {
		t.Fatal("not renewed")
	}
	testkit.Eventually(t, "controller ready", func() bool { return r.Ready() == nil })
	// The issuer sets the gateway leaf's metrics after the write that made
	// the renewal visible, expiring first and then expiry: wait for the
	// renewed leaf's expiry.
	testkit.Eventually(t, "renewed gateway leaf's metrics", func() bool {
		return testutil.ToFloat64(r.metrics.expiry.WithLabelValues(certGateway)) == float64(next.NotAfter.Unix())
	})
	for _, cert := range []string{certGateway, certController} {
		if got := testutil.ToFloat64(r.metrics.expiring.WithLabelValues(cert)); got != 0 {
			t.Errorf("%s still expiring", cert)
		}
	}
}

// An issuer that runs out of time is reported once and not used; it does
// not flap between loaded and invalid on later passes.
func TestExpiredIssuerIsNotUsed(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, east))
	clk := clocktesting.NewFakeClock(time.Now())
	r := start(t, c.Kube, Options{Namespace: ns, Clock: clk, LeafTTL: time.Hour})
	testkit.Eventually(t, "ready", func() bool { return r.Ready() == nil })

	clk.SetTime(east.Issuer.Cert.NotAfter.Add(time.Minute))
	e := waitEvent(t, ctx, c.Kube, ns, contract.IssuerSecret, EventIssuerInvalid)
	if !strings.Contains(e.Note, "expired") {
		t.Errorf("note %q", e.Note)
	}
	for range 3 { // retries
		clk.Step(time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Count(r.logs.String(), `msg="loaded issuer"`) != 1 {
		t.Fatalf("issuer reloaded:\n%s", r.logs.String())
	}
	if testutil.CollectAndCount(r.metrics.expiry, "ferry_certificate_expiry_timestamp_seconds") != 2 {
		t.Error("issuer expiry still reported") // gateway and controller remain
	}
}
