package tunnel

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"time"
)

// The h2 guard. A feed connection is handed to the gRPC server, which bounds
// what an HTTP/2 client can make it hold (concurrent streams, header list
// size, pings without data) but does not disconnect a client that resets
// every stream it opens (the "rapid reset" of CVE-2023-44487) or sends
// SETTINGS without pause: both cost the server work per frame, forever. A
// feed client opens one stream and keeps it, and sends SETTINGS once (then
// only acknowledges the server's), so the guard counts the frames of those
// two kinds that the client sends in each H2GlitchWindow, and closes the
// connection when a count passes its limit, as HAProxy's glitch threshold
// and Go's net/http do. It reads the frame headers in the plaintext the
// client sends, after TLS, and allocates nothing.

// H2GlitchWindow is the window the h2 guard's limits count in.
const H2GlitchWindow = time.Minute

// errH2Flood is what the guarded connection's Read returns once it closed
// the connection.
var errH2Flood = errors.New("tunnel: h2 client flooded the connection; closed")

// HTTP/2 frame types and flags the guard reads (RFC 9113, section 6).
const (
	h2FrameRSTStream   = 0x3
	h2FrameSettings    = 0x4
	h2FlagSettingsAck  = 0x1
	h2FrameHeaderBytes = 9
	h2PrefaceBytes     = 24 // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// h2Scanner follows the frame boundaries of a client's byte stream and
// counts RST_STREAM and (non-ACK) SETTINGS frames per window.
type h2Scanner struct {
	maxResets, maxSettings int
	now                    func() time.Time

	preface     int // preface bytes still to skip
	hdr         [h2FrameHeaderBytes]byte
	hdrN        int
	payloadLeft uint32

	windowStart       time.Time
	resets, settingsN int
}

func newH2Scanner(l Limits, now func() time.Time) *h2Scanner {
	return &h2Scanner{maxResets: l.MaxH2ResetsPerWindow, maxSettings: l.MaxH2SettingsPerWindow, now: now, preface: h2PrefaceBytes}
}

// scan reads p, the next bytes the client sent, and returns the kind of
// frame whose limit was passed, or "".
func (s *h2Scanner) scan(p []byte) string {
	for len(p) > 0 {
		switch {
		case s.preface > 0:
			n := min(s.preface, len(p))
			s.preface -= n
			p = p[n:]
		case s.payloadLeft > 0:
			n := min(int(s.payloadLeft), len(p))
			s.payloadLeft -= uint32(n)
			p = p[n:]
		default:
			n := copy(s.hdr[s.hdrN:], p)
			s.hdrN += n
			p = p[n:]
			if s.hdrN < h2FrameHeaderBytes {
				return ""
			}
			s.hdrN = 0
			s.payloadLeft = uint32(s.hdr[0])<<16 | uint32(binary.BigEndian.Uint16(s.hdr[1:3]))
			if kind := s.count(s.hdr[3], s.hdr[4]); kind != "" {
				return kind
			}
		}
	}
	return ""
}

func (s *h2Scanner) count(typ, flags byte) string {
	if typ != h2FrameRSTStream && (typ != h2FrameSettings || flags&h2FlagSettingsAck != 0) {
		return ""
	}
	if now := s.now(); now.Sub(s.windowStart) >= H2GlitchWindow {
		s.windowStart, s.resets, s.settingsN = now, 0, 0
	}
	if typ == h2FrameRSTStream {
		if s.resets++; s.resets > s.maxResets {
			return "RST_STREAM"
		}
		return ""
	}
	if s.settingsN++; s.settingsN > s.maxSettings {
		return "SETTINGS"
	}
	return ""
}

// h2GuardConn is a handed-off feed connection whose reads pass the scanner.
// It embeds the *tls.Conn, so the feed's credentials read its TLS state.
type h2GuardConn struct {
	*tls.Conn
	onFlood func(kind string)

	// scan is used by Read alone, and unlocked: gRPC reads a connection
	// from one goroutine, and concurrent reads of one byte stream could
	// not be framed anyway.
	scan *h2Scanner
}

func (g *h2GuardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 {
		if kind := g.scan.scan(p[:n]); kind != "" {
			g.onFlood(kind)
			_ = g.Conn.Close()
			return 0, errH2Flood
		}
	}
	return n, err
}
