package contract

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
)

// FuzzMirrorName: a mirror name is a DNS-1035 label of at most 63
// characters, the same for the same input, the plain "<svc>-<cluster>"
// when that fits, and otherwise different for different inputs (the hash
// is over both parts, with a separator no label contains).
func FuzzMirrorName(f *testing.F) {
	f.Add("web", "east", "web", "west")
	f.Add(strings.Repeat("a", 60), "east", strings.Repeat("a", 60), "eas")
	f.Add(strings.Repeat("b", 51)+"-"+strings.Repeat("c", 11), "north", "b", "c")
	f.Fuzz(func(t *testing.T, svc1, cl1, svc2, cl2 string) {
		if !dnsLabel(svc1) || !dnsLabel(cl1) || !dnsLabel(svc2) || !dnsLabel(cl2) {
			return
		}
		n1 := MirrorName(svc1, cl1)
		if len(n1) > MaxNameLength || !dnsLabel(n1) || n1[0] != svc1[0] {
			t.Fatalf("MirrorName(%q, %q) = %q is not a valid name", svc1, cl1, n1)
		}
		if n1 != MirrorName(svc1, cl1) {
			t.Fatal("not deterministic")
		}
		if len(svc1)+1+len(cl1) <= MaxNameLength && n1 != svc1+"-"+cl1 {
			t.Fatalf("a name that fits was changed: %q", n1)
		}
		if (svc1 != svc2 || cl1 != cl2) && n1 == MirrorName(svc2, cl2) {
			plain := func(s, c string) bool { return len(s)+1+len(c) <= MaxNameLength }
			// Two plain names can only meet when the dash moves, as in
			// a-b-c; Ferry's exports and clusters are named so that a
			// mirror's remote-service annotation, not its name, says which
			// export it is. Truncated names must never meet.
			if !plain(svc1, cl1) || !plain(svc2, cl2) {
				t.Fatalf("MirrorName(%q, %q) = MirrorName(%q, %q) = %q", svc1, cl1, svc2, cl2, n1)
			}
		}
	})
}

// dnsLabel is the RFC 1123 label syntax, which every input and output
// obeys: identity's check, which the cluster-name rule builds on.
func dnsLabel(s string) bool { return identity.ValidateDNSLabel(s) == nil }

// FuzzParseRange: a range that parses is valid and prints back to itself.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"41000-48999", " 2000 - 2000 ", "80-90", "9990-9999", "-1-5", "1-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.Validate() != nil || r.Min > r.Max || r.Min < 1024 || r.Max > 65535 {
			t.Fatalf("%q parsed to an invalid %v", s, r)
		}
		again, err := ParseRange(r.String())
		if err != nil || again != r {
			t.Fatalf("%q: %v prints as %q, which parses to %v, %v", s, r, r.String(), again, err)
		}
	})
}
