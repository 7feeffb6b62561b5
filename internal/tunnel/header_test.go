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
		{"default", "web", 80},
		{strings.Repeat("n", 63), strings.Repeat("s", 63), 65535},
		// The codec carries hostile spellings unchanged; Validate judges them.
		{"default", "WEB.", 1},
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
	_ = WriteHeader(&buf, Target{"default", "web", 80})
	f.Add(buf.Bytes())
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
