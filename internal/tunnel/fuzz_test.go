package tunnel

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzTargetValidate: a target that validates is one spelling of one
// Service port, or of one pod's. It survives the header's encoding
// unchanged, and it names nothing that is not a DNS label and a real port.
func FuzzTargetValidate(f *testing.F) {
	f.Add("default", "web", 80, "")
	f.Add("Default", "web.", 0, "")
	f.Add("a-b", strings.Repeat("x", 63), 65535, "")
	f.Add("../etc", "10.0.0.1", -1, "")
	f.Add("default", "web", 80, "web-1")
	f.Add("default", "web", 80, "10.0.0.1")
	f.Add("default", "web", 80, "Web-1.")
	f.Fuzz(func(t *testing.T, ns, svc string, port int, host string) {
		tg := Target{Namespace: ns, Service: svc, Port: port, Hostname: host}
		if tg.Validate() != nil {
			return
		}
		if port < 1 || port > 65535 || len(ns) > 63 || len(svc) > 63 || len(host) > 63 || strings.ContainsAny(ns+svc+host, "./:\x00 ") {
			t.Fatalf("%+v validated", tg)
		}
		var b bytes.Buffer
		if err := WriteHeader(&b, tg); err != nil {
			t.Fatalf("a valid target does not encode: %v", err)
		}
		got, err := ReadHeader(&b, DefaultMaxHeaderBytes)
		if err != nil || got != tg {
			t.Fatalf("round trip: %+v, %v; want %+v", got, err, tg)
		}
	})
}

// FuzzReadReply: whatever a remote answers, the reply is OK, a rejection
// with a known or unknown status, or an error; it never panics and never
// reads a reason longer than one byte can say.
func FuzzReadReply(f *testing.F) {
	for _, s := range []Status{StatusOK, StatusDenied, StatusUnavailable} {
		var b bytes.Buffer
		_ = WriteReply(&b, s, "reason")
		f.Add(b.Bytes())
	}
	f.Add([]byte{byte(StatusDenied), 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ReadReply(bytes.NewReader(b))
		var re *RejectError
		switch {
		case err == nil:
			if len(b) == 0 || Status(b[0]) != StatusOK {
				t.Fatalf("OK read from %x", b)
			}
		case errors.As(err, &re):
			if len(re.Reason) > 255 {
				t.Fatalf("reason of %d bytes", len(re.Reason))
			}
		}
	})
}
