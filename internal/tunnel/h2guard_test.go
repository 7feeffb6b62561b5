package tunnel

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// frames writes an HTTP/2 client's byte stream: the preface, then what
// write puts on the framer.
func frames(t *testing.T, write func(fr *http2.Framer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	if err := write(http2.NewFramer(&b, nil)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// feedClient is what a feed client sends on one connection: its SETTINGS,
// acknowledgements, one stream with data (larger than one read), window
// updates, ping acknowledgements, and a reset when it gives the stream up.
func feedClient(fr *http2.Framer) error {
	steps := []func() error{
		func() error { return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}) },
		fr.WriteSettingsAck,
		func() error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x83, 0x86}, EndHeaders: true})
		},
		func() error { return fr.WriteData(1, false, bytes.Repeat([]byte{0}, 16000)) },
		func() error { return fr.WriteWindowUpdate(0, 1<<20) },
	}
	for range 200 {
		steps = append(steps, func() error { return fr.WritePing(true, [8]byte{}) }, fr.WriteSettingsAck)
	}
	steps = append(steps, func() error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func rapidReset(n int) func(fr *http2.Framer) error {
	return func(fr *http2.Framer) error {
		if err := fr.WriteSettings(); err != nil {
			return err
		}
		for i := range n {
			id := uint32(2*i + 1)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x83}, EndHeaders: true}); err != nil {
				return err
			}
			if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
				return err
			}
		}
		return nil
	}
}

func settingsFlood(n int) func(fr *http2.Framer) error {
	return func(fr *http2.Framer) error {
		for range n {
			if err := fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestH2ScannerCountsFloodsNotFeedClients(t *testing.T) {
	l := DefaultLimits()
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"a feed client", frames(t, feedClient), ""},
		{"resets up to the limit", frames(t, rapidReset(l.MaxH2ResetsPerWindow)), ""},
		{"rapid reset", frames(t, rapidReset(l.MaxH2ResetsPerWindow+1)), "RST_STREAM"},
		{"SETTINGS up to the limit", frames(t, settingsFlood(l.MaxH2SettingsPerWindow)), ""},
		{"SETTINGS flood", frames(t, settingsFlood(l.MaxH2SettingsPerWindow+1)), "SETTINGS"},
	} {
		// Reads end anywhere: in the preface, a frame header or a payload.
		for _, chunk := range []int{1, 7, 4096, len(tc.bytes)} {
			s := newH2Scanner(l, time.Now)
			got := ""
			for p := tc.bytes; len(p) > 0 && got == ""; {
				n := min(chunk, len(p))
				got, p = s.scan(p[:n]), p[n:]
			}
			if got != tc.want {
				t.Errorf("%s, read %d bytes at a time: flagged %q, want %q", tc.name, chunk, got, tc.want)
			}
		}
	}
}

// The counts start again in each window: a client that resets at a steady
// pace below the limit is never cut.
func TestH2ScannerWindow(t *testing.T) {
	l := DefaultLimits()
	now := time.Unix(0, 0)
	s := newH2Scanner(l, func() time.Time { return now })
	body := frames(t, rapidReset(l.MaxH2ResetsPerWindow))
	if got := s.scan(body); got != "" {
		t.Fatalf("first window: %q", got)
	}
	now = now.Add(H2GlitchWindow)
	more := frames(t, rapidReset(l.MaxH2ResetsPerWindow))[len(http2.ClientPreface):]
	if got := s.scan(more); got != "" {
		t.Fatalf("second window: %q", got)
	}
	if got := s.scan(frames(t, rapidReset(1))[len(http2.ClientPreface):]); got != "RST_STREAM" {
		t.Fatalf("past the limit in the second window: %q, want RST_STREAM", got)
	}
}
