package gateway

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// onlyFrom lets one address use the ports of one namespace, and refuses
// every other caller as a pod of another namespace.
type onlyFrom struct {
	addr      netip.Addr
	namespace string
}

func (p onlyFrom) Refuse(addr netip.Addr, namespace string) string {
	if addr == p.addr && namespace == p.namespace {
		return ""
	}
	return ReasonCallerNamespace
}

// dialFrom connects to addr from a chosen loopback address, one client of
// the egress per address.
func dialFrom(t *testing.T, from net.IP, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: from}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// A refused caller's connection is closed at once and nothing is dialed:
// no stream to the remote, no backend connection. An allowed caller on the
// same port gets through.
func TestEgressRefusesCallersThePolicyRefuses(t *testing.T) {
	p := newPair(t, pairOpts{callers: onlyFrom{addr: netip.MustParseAddr("127.0.0.1"), namespace: "default"}})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	addr := p.route(t, "echo")

	// The reset may even beat the dial's return; if not, the read must end
	// without a byte.
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if refused, err := d.Dial("tcp", addr); err == nil {
		defer refused.Close()
		_ = refused.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = refused.Write([]byte("x"))
		if n, err := refused.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("a refused caller read %d bytes (err %v)", n, err)
		}
	}
	if got := testutil.ToFloat64(p.egMetrics.EgressCallersRefused.WithLabelValues(ReasonCallerNamespace, string(CallerEnforce))); got != 1 {
		t.Errorf("refused callers = %v, want 1", got)
	}
	if n := p.dialer.count(be.addr()); n != 0 {
		t.Errorf("the backend was dialed %d times for a refused caller", n)
	}
	if got := testutil.ToFloat64(p.inMetrics.IngressOpened.WithLabelValues("west", "default/echo")); got != 0 {
		t.Errorf("ingress opened %v streams for a refused caller", got)
	}

	allowed := dialFrom(t, net.IPv4(127, 0, 0, 1), addr)
	if _, err := allowed.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(allowed, buf); err != nil || buf[0] != 'y' {
		t.Fatalf("an allowed caller got %q, %v\n%s", buf, err, p.failureCounters())
	}
}

// In audit mode a refused caller is counted and still served, so a policy
// can be rolled out without cutting anyone off.
func TestEgressAuditModeCountsAndServes(t *testing.T) {
	p := newPair(t, pairOpts{
		callers:    onlyFrom{addr: netip.MustParseAddr("127.0.0.1"), namespace: "default"},
		callerMode: CallerAudit,
	})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	c := dialFrom(t, net.IPv4(127, 0, 0, 2), p.route(t, "echo"))
	if _, err := c.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("audit mode refused a caller: %v", err)
	}
	if got := testutil.ToFloat64(p.egMetrics.EgressCallersRefused.WithLabelValues(ReasonCallerNamespace, string(CallerAudit))); got != 1 {
		t.Errorf("audited callers = %v, want 1", got)
	}
}

func TestEgressNeedsACallerPolicy(t *testing.T) {
	lim := testLimits()
	if _, err := NewEgress(t.Context(), EgressOptions{Limits: lim}); err == nil || !strings.Contains(err.Error(), "CallerPolicy") {
		t.Errorf("without a CallerPolicy: %v", err)
	}
	if _, err := NewEgress(t.Context(), EgressOptions{Limits: lim, Callers: AnyCaller, CallerMode: "off"}); err == nil || !strings.Contains(err.Error(), "caller mode") {
		t.Errorf(`caller mode "off": %v`, err)
	}
}
