package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, want := range []Target{
		{"default", "web", 80, ""},
		{strings.Repeat("n", 63), strings.Repeat("s", 63), 65535, ""},
		// The codec carries hostile spellings unchanged; Validate judges them.
		{"default", "WEB.", 1, ""},
		// Version 2: one pod of a headless Service.
		{"default", "web", 80, "web-1"},
		{strings.Repeat("n", 63), strings.Repeat("s", 63), 65535, strings.Repeat("h", 63)},
		{"default", "web", 1, "WEB-1."},
	} {
		var buf bytes.Buffer
		if err := WriteHeader(&buf, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadHeader(&buf, DefaultMaxHeaderBytes)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if buf.Len() != 0 {
			t.Fatalf("%d bytes left after header", buf.Len())
		}
	}
}

// The bytes on the wire, pinned: a target without a hostname is version 1
// exactly as before hostnames existed, so a gateway that knows only
// version 1 serves it; one with a hostname is version 2.
func TestHeaderGoldenBytes(t *testing.T) {
	cases := []struct {
		name string
		t    Target
		want []byte
	}{
		{"version 1 without a hostname", Target{Namespace: "ns", Service: "web", Port: 80},
			[]byte{0, 10, 1, 2, 'n', 's', 3, 'w', 'e', 'b', 0, 80}},
		{"version 2 with a hostname", Target{Namespace: "ns", Service: "web", Port: 80, Hostname: "web-1"},
			[]byte{0, 16, 2, 2, 'n', 's', 3, 'w', 'e', 'b', 0, 80, 5, 'w', 'e', 'b', '-', '1'}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteHeader(&buf, tc.t); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), tc.want) {
				t.Fatalf("header = %v, want %v", buf.Bytes(), tc.want)
			}
		})
	}
}

// The largest valid header fits the documented bound with room to spare.
func TestHeaderMaxValidSize(t *testing.T) {
	l := strings.Repeat("a", MaxLabelLength)
	var buf bytes.Buffer
	if err := WriteHeader(&buf, Target{Namespace: l, Service: l, Port: 65535, Hostname: l}); err != nil {
		t.Fatal(err)
	}
	if body := buf.Len() - 2; body != 195 || body > DefaultMaxHeaderBytes {
		t.Fatalf("largest valid body is %d bytes, want 195", body)
	}
}

// countingReader fails the test if ReadHeader reads past the length prefix of
// an oversized header: the limit must apply before allocation.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestHeaderTooLarge(t *testing.T) {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.BigEndian, uint16(4096))
	buf.Write(make([]byte, 4096))
	cr := &countingReader{r: &buf}
	_, err := ReadHeader(cr, 1024)
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
	if cr.n != 2 {
		t.Fatalf("read %d bytes, want only the 2-byte length", cr.n)
	}
}

func TestHeaderMalformed(t *testing.T) {
	enc := func(body ...byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(body)))
		return append(b, body...)
	}
	cases := map[string][]byte{
		"empty body":        enc(),
		"unknown version":   enc(9, 1, 'a', 1, 'b', 0, 80),
		"truncated ns":      enc(1, 5, 'a'),
		"truncated service": enc(1, 1, 'a', 4, 'b'),
		"no port":           enc(1, 1, 'a', 1, 'b'),
		"trailing bytes":    enc(1, 1, 'a', 1, 'b', 0, 80, 0),
		// A version-1 reader must not take a hostname for trailing noise
		// it may ignore; and a version-1 body may not carry one.
		"v1 with a hostname":       enc(1, 1, 'a', 1, 'b', 0, 80, 1, 'h'),
		"v2 empty hostname":        enc(2, 1, 'a', 1, 'b', 0, 80, 0),
		"v2 no hostname":           enc(2, 1, 'a', 1, 'b', 0, 80),
		"v2 truncated hostname":    enc(2, 1, 'a', 1, 'b', 0, 80, 5, 'h'),
		"v2 trailing bytes":        enc(2, 1, 'a', 1, 'b', 0, 80, 1, 'h', 0),
		"v2 truncated port":        enc(2, 1, 'a', 1, 'b', 0),
		"v2 truncated service":     enc(2, 1, 'a', 4, 'b'),
		"version 3":                enc(3, 1, 'a', 1, 'b', 0, 80, 1, 'h'),
		"version 0":                enc(0, 1, 'a', 1, 'b', 0, 80),
		"v2 hostname length over":  enc(2, 1, 'a', 1, 'b', 0, 80, 255, 'h'),
		"v2 only the version byte": enc(2),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadHeader(bytes.NewReader(b), DefaultMaxHeaderBytes); !errors.Is(err, ErrBadHeader) {
				t.Fatalf("err = %v, want ErrBadHeader", err)
			}
		})
	}
	t.Run("short length", func(t *testing.T) {
		if _, err := ReadHeader(bytes.NewReader([]byte{0}), DefaultMaxHeaderBytes); err == nil {
			t.Fatal("want error")
		}
	})
}

func TestReply(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReply(&buf, StatusOK, "ignored"); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 1 {
		t.Fatalf("OK reply is %d bytes, want 1", buf.Len())
	}
	if err := ReadReply(&buf); err != nil {
		t.Fatalf("ReadReply(OK) = %v", err)
	}
	if err := WriteReply(&buf, StatusDenied, strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	err := ReadReply(&buf)
	var re *RejectError
	if !errors.As(err, &re) || re.Status != StatusDenied || len(re.Reason) != maxReasonBytes {
		t.Fatalf("ReadReply = %#v", err)
	}
	if re.Retriable() {
		t.Fatal("denied must not be retriable")
	}
	if !(&RejectError{Status: StatusUnavailable}).Retriable() {
		t.Fatal("unavailable must be retriable")
	}
}

func FuzzReadHeader(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteHeader(&buf, Target{"default", "web", 80, ""})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = WriteHeader(&buf, Target{"default", "web", 80, "web-1"})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 8, 2, 1, 'a', 1, 'b', 0, 80, 0}) // v2, empty hostname
	f.Fuzz(func(t *testing.T, b []byte) {
		tgt, err := ReadHeader(bytes.NewReader(b), DefaultMaxHeaderBytes)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes: one spelling.
		var out bytes.Buffer
		if err := WriteHeader(&out, tgt); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), b[:out.Len()]) {
			t.Fatalf("re-encoding differs: %x vs %x", out.Bytes(), b)
		}
	})
}

func TestRejectErrorMessage(t *testing.T) {
	web := Target{Namespace: "shop", Service: "web", Port: 8080}
	for _, c := range []struct {
		err       RejectError
		want, not string
	}{
		{RejectError{Status: StatusDenied, Reason: "denied", Cluster: "east", Target: web},
			"tunnel stream to shop/web:8080 in cluster east rejected: denied: the remote gateway does not let this cluster reach", "denied: denied"},
		// A reason other than the status is kept, quoted: it is the remote's text.
		{RejectError{Status: StatusUnavailable, Reason: "exports_not_synced\nlevel=ERROR", Cluster: "east", Target: web},
			`rejected: unavailable ("exports_not_synced\nlevel=ERROR"): no ready endpoint`, "\n"},
		// Without what was asked (ReadReply alone), the status and meaning still say something.
		{RejectError{Status: StatusOverloaded}, "tunnel stream rejected: overloaded: the remote gateway is at a stream or connection limit", " to "},
		{RejectError{Status: Status(42)}, "tunnel stream rejected: status_42", ": :"},
	} {
		got := c.err.Error()
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("%+v: %q, want %q and not %q", c.err, got, c.want, c.not)
		}
	}
}
