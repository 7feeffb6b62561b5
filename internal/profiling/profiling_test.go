package profiling

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/tooling/testkit"
)

func TestServesProfilesAndBoundsSeconds(t *testing.T) {
	s, err := Listen("127.0.0.1:0", testkit.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("heap: %d %.80q", code, body)
	}
	for _, q := range []string{"0", "121", "x", "-1"} {
		if code, _ := get("/debug/pprof/profile?seconds=" + q); code != http.StatusBadRequest {
			t.Errorf("profile?seconds=%s: %d, want 400", q, code)
		}
	}
	if code, _ := get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the profile port: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenFailsOnAPortInUse(t *testing.T) {
	s, err := Listen("127.0.0.1:0", testkit.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	if _, err := Listen(s.Addr(), testkit.Logger()); err == nil || !strings.Contains(err.Error(), "pprof server") {
		t.Fatalf("second Listen on %s: %v", s.Addr(), err)
	}
}
