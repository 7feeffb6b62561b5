package tunnel

import (
	"errors"
	"strings"
	"testing"
)

func TestTargetValidate(t *testing.T) {
	long := strings.Repeat("a", 64)
	cases := []struct {
		name string
		t    Target
		ok   bool
	}{
		{"canonical", Target{"default", "web", 80, ""}, true},
		{"digits and dashes", Target{"ns-1", "web-2", 65535, ""}, true},
		{"numeric namespace is a valid label", Target{"123", "web", 80, ""}, true},
		{"63-byte names", Target{strings.Repeat("a", 63), strings.Repeat("b", 63), 1, ""}, true},
		{"upper-case service", Target{"default", "Web", 80, ""}, false},
		{"upper-case namespace", Target{"Default", "web", 80, ""}, false},
		{"trailing dot", Target{"default", "web.", 80, ""}, false},
		{"fqdn", Target{"default", "web.default.svc.cluster.local", 80, ""}, false},
		{"ipv4 literal", Target{"default", "10.0.0.1", 80, ""}, false},
		{"ipv6 literal", Target{"default", "::1", 80, ""}, false},
		{"ipv4 namespace", Target{"127.0.0.1", "web", 80, ""}, false},
		{"service starts with digit", Target{"default", "1web", 80, ""}, false},
		{"leading dash", Target{"default", "-web", 80, ""}, false},
		{"trailing dash", Target{"default", "web-", 80, ""}, false},
		{"nul byte", Target{"default", "web\x00", 80, ""}, false},
		{"percent", Target{"default", "w%65b", 80, ""}, false},
		{"space", Target{"default", "web ", 80, ""}, false},
		{"unicode", Target{"default", "wéb", 80, ""}, false},
		{"empty namespace", Target{"", "web", 80, ""}, false},
		{"empty service", Target{"default", "", 80, ""}, false},
		{"too long", Target{"default", long, 80, ""}, false},
		{"port zero", Target{"default", "web", 0, ""}, false},
		{"port too big", Target{"default", "web", 65536, ""}, false},
		{"negative port", Target{"default", "web", -1, ""}, false},

		// A hostname is a pod's RFC 1123 label, in its one spelling.
		{"hostname", Target{"default", "web", 80, "web-1"}, true},
		{"hostname starting with a digit", Target{"default", "web", 80, "0web"}, true},
		{"numeric hostname", Target{"default", "web", 80, "1"}, true},
		{"63-byte hostname", Target{"default", "web", 80, strings.Repeat("h", 63)}, true},
		{"upper-case hostname", Target{"default", "web", 80, "Web-1"}, false},
		{"hostname with a dot", Target{"default", "web", 80, "web-1.web"}, false},
		{"hostname with a trailing dot", Target{"default", "web", 80, "web-1."}, false},
		{"ipv4 hostname", Target{"default", "web", 80, "10.0.0.1"}, false},
		{"ipv6 hostname", Target{"default", "web", 80, "::1"}, false},
		{"hostname too long", Target{"default", "web", 80, long}, false},
		{"hostname with a leading dash", Target{"default", "web", 80, "-web"}, false},
		{"hostname with a trailing dash", Target{"default", "web", 80, "web-"}, false},
		{"hostname with a nul byte", Target{"default", "web", 80, "web-1\x00"}, false},
		{"hostname with an underscore", Target{"default", "web", 80, "web_1"}, false},
		{"hostname with a space", Target{"default", "web", 80, " web-1"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.t.Validate()
			if c.ok && err != nil {
				t.Fatalf("Validate(%v) = %v, want nil", c.t, err)
			}
			if !c.ok && !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("Validate(%v) = %v, want ErrInvalidTarget", c.t, err)
			}
		})
	}
}

func TestTargetStringAndExport(t *testing.T) {
	all := Target{Namespace: "ns", Service: "web", Port: 80}
	one := Target{Namespace: "ns", Service: "web", Port: 80, Hostname: "web-1"}
	if got := all.String(); got != "ns/web:80" {
		t.Errorf("String() = %q", got)
	}
	if got := one.String(); got != "ns/web:80@web-1" {
		t.Errorf("String() = %q", got)
	}
	// The metric label stays one per export, whatever pod is named.
	if all.Export() != "ns/web" || one.Export() != "ns/web" {
		t.Errorf("Export() = %q, %q; want ns/web for both", all.Export(), one.Export())
	}
}
