package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestOpsEndpoints(t *testing.T) {
	p := newPair(t, pairOpts{})
	be := newBackend(t, echo)
	p.export("echo", nil, be.addr())
	c := dial(t, p.route(t, "echo"))
	_ = c.CloseWrite()
	_, _ = readAll(t, c)

	synced := false
	ops := &Ops{Gatherer: p.reg, Checks: []Check{
		CertificateLoaded(p.east.Gateway),
		{Name: "caches", Fn: func() error {
			if !synced {
				return errors.New("not synced")
			}
			return nil
		}},
	}}
	h := ops.Handler()
	if code, _ := get(t, h, "/live"); code != http.StatusOK {
		t.Fatalf("/live = %d", code)
	}
	if code, body := get(t, h, "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "caches") {
		t.Fatalf("/ready before sync = %d %q", code, body)
	}
	synced = true
	if code, _ := get(t, h, "/ready"); code != http.StatusOK {
		t.Fatalf("/ready after sync = %d", code)
	}
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`ferry_gateway_ingress_streams_opened_total{cluster="west",export="default/echo"} 1`,
		`ferry_gateway_backend_time_to_first_byte_seconds_bucket`,
		`ferry_gateway_tunnel_inbound_sessions{cluster="west"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	ops.SetDraining()
	if code, _ := get(t, h, "/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready while draining = %d", code)
	}
	if code, _ := get(t, h, "/live"); code != http.StatusOK {
		t.Fatalf("/live while draining = %d", code)
	}
}

func TestReadyNeedsCertificate(t *testing.T) {
	ops := &Ops{Checks: []Check{CertificateLoaded(&identity.Source{})}}
	if err := ops.Ready(); err == nil {
		t.Fatal("ready without a certificate")
	}
}

func TestMetricsUseCallerRegistry(t *testing.T) {
	// Two gateways in one process (as in these tests) must not collide,
	// which they would on the global registry.
	if _, err := NewMetrics(nil); err != nil {
		t.Fatal(err)
	}
	p := newPair(t, pairOpts{})
	if _, err := NewMetrics(p.reg); err == nil {
		t.Fatal("registering twice on one registry should fail loudly")
	}
}
