package benchpeer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the Ferry child, the way
// hack/bench's main does, so the tiny run exercises the real re-exec path.
func TestMain(m *testing.M) {
	if IsChild() {
		if err := RunChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func tinyConfig() Config {
	return Config{
		StreamBytes: 1 << 20,
		Conns:       20,
		Parallel:    8,
		Requests:    400,
		MsgSize:     64,
		IdleConns:   50,
		WANRTTs:     []time.Duration{5 * time.Millisecond},
		WANBytes:    1 << 20,
		WANStreams:  4,
		Reps:        1,
		IOTimeout:   5 * time.Second,
		Timeout:     30 * time.Second,
	}
}

// peerOrSkip decides whether the HAProxy path runs. A missing haproxy fails
// the test, because a harness whose peer silently vanished reports nothing
// useful; FERRY_SKIP_PEER=1 turns that into a loud skip.
func peerOrSkip(t *testing.T) (skip bool) {
	_, err := LookHAProxy("")
	if err == nil {
		return false
	}
	if os.Getenv("FERRY_SKIP_PEER") == "1" {
		fmt.Fprintf(os.Stderr, "\n*** benchpeer: HAProxy path NOT TESTED (FERRY_SKIP_PEER=1): %v ***\n\n", err)
		return true
	}
	t.Errorf("%v", err)
	return true
}

// TestTinyRun runs every workload through every path once, small, and
// checks that each produced a plausible figure.
func TestTinyRun(t *testing.T) {
	cfg := tinyConfig()
	skipPeer := peerOrSkip(t)
	cfg.SkipHAProxy = skipPeer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{PathDirect, PathFerry}
	if !skipPeer {
		want = append(want, PathHAProxy)
	}
	if strings.Join(rep.Paths, ",") != strings.Join(want, ",") {
		t.Fatalf("paths %v, want %v", rep.Paths, want)
	}
	rows := map[string]Row{}
	for _, r := range rep.Rows {
		rows[r.Workload+"/"+r.Metric] = r
	}
	for _, key := range []string{
		"stream/up (client→backend)", "stream/down (backend→client)",
		"connrate/new conns/s", "connrate/connect+echo p50", "connrate/connect+echo p99",
		"parallel/requests/s", "parallel/request p50", "parallel/request p99",
		"wan/5 ms, 1 stream up", "wan/5 ms, 4 streams down",
	} {
		r, ok := rows[key]
		if !ok {
			t.Errorf("no row %s", key)
			continue
		}
		for _, p := range want {
			if p == PathDirect && strings.HasPrefix(key, "wan/") {
				continue // the WAN is between the two proxies
			}
			if v := r.Median[p]; !(v > 0) {
				t.Errorf("%s via %s = %v, want > 0", key, p, v)
			}
		}
		if r.FerryOverDirect == nil && !strings.HasPrefix(key, "wan/") {
			t.Errorf("%s: no ferry/direct ratio", key)
		}
		if !skipPeer && r.FerryOverHAProxy == nil {
			t.Errorf("%s: no ferry/haproxy ratio", key)
		}
	}
	// Proxy CPU exists for the child-process paths only; a tiny run may
	// round it to zero (10 ms ticks), so only its presence is checked.
	if r, ok := rows["stream/proxy CPU"]; !ok {
		t.Error("no proxy CPU row")
	} else if _, ok := r.Median[PathDirect]; ok {
		t.Error("direct has a proxy CPU figure; it has no proxy")
	}

	// Idle connections are measured through the proxies only; a tiny run's
	// RSS growth may be anything, so only the figures' presence is checked.
	if r, ok := rows["idle/RSS per idle conn"]; !ok {
		t.Error("no idle RSS row")
	} else {
		if _, ok := r.Median[PathDirect]; ok {
			t.Error("direct has an idle RSS figure; it has no proxy")
		}
		for _, p := range want[1:] {
			if _, ok := r.Median[p]; !ok {
				t.Errorf("no idle RSS figure for %s", p)
			}
		}
	}

	var table, js bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| workload") || !strings.Contains(table.String(), "ferry/direct") {
		t.Errorf("table lacks its header:\n%s", table.String())
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != len(rep.Rows) {
		t.Errorf("JSON does not round-trip (%v): %s", err, js.String())
	}
	t.Logf("\n%s", table.String())
	if skipPeer && os.Getenv("FERRY_SKIP_PEER") == "1" {
		t.Skip("HAProxy path skipped (FERRY_SKIP_PEER=1); direct and Ferry paths passed")
	}
}

// TestFerryInProcess covers the in-process variant, which has no proxy CPU.
func TestFerryInProcess(t *testing.T) {
	cfg := tinyConfig()
	cfg.SkipHAProxy = true
	cfg.FerryInProcess = true
	cfg.Conns, cfg.Requests = 5, 40
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if r.Metric == "proxy CPU" {
			t.Errorf("proxy CPU reported for an in-process run: %+v", r)
		}
	}
}

// TestHAProxyEastRequiresClientCert: the peer must do the same job as
// Ferry's ingress, so a client without a certificate must get nothing
// through east.
func TestHAProxyEastRequiresClientCert(t *testing.T) {
	bin, err := LookHAProxy("")
	if err != nil {
		if os.Getenv("FERRY_SKIP_PEER") == "1" {
			t.Skipf("LOUD SKIP: %v", err)
		}
		t.Fatal(err)
	}
	be, err := newBackend(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer be.close()
	ctx := context.Background()
	hp, err := startHAProxy(ctx, bin, be.addr(), 4096, nil, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hp.close()
	if !strings.HasPrefix(hp.cipher, "TLS_") {
		t.Errorf("probe cipher %q", hp.cipher)
	}
	c, err := tls.Dial("tcp", hp.eastAddr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // the test wants the server's verdict only
	if err != nil {
		return // refused during the handshake: fine
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(echoRequest(8, true))
	n, err := io.ReadFull(c, make([]byte, 8))
	var ne net.Error
	if err == nil || n > 0 || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("east without a client certificate: read %d bytes, err %v; want a TLS alert", n, err)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	if got := percentile(d, 0.5); got != 5 {
		t.Errorf("p50 = %v, want 5", got)
	}
	if got := percentile(d, 0.99); got != 10 {
		t.Errorf("p99 = %v, want 10", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
}

// An idle-mode connection may stay silent past the backend's idle deadline,
// which an echo-mode connection may not: the idle workload holds thousands
// open for as long as opening them takes under load.
func TestBackendIdleModeOutlivesTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		mode    byte
		wantErr bool
	}{{modeIdle, false}, {modeEcho, true}} {
		be, err := newBackend(50 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", be.addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{tc.mode, 'x'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// Four idle deadlines of silence.
		time.Sleep(200 * time.Millisecond)
		got := be.firstErr() != nil
		c.Close()
		be.close()
		if got != tc.wantErr {
			t.Errorf("mode %q: backend error after silence = %v, want %v", tc.mode, got, tc.wantErr)
		}
	}
}
