package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// stream is govulncheck's JSON output, cut down: one standard library
// vulnerability reached, one module vulnerability only imported.
const stream = `{"config":{"db_last_modified":"2026-11-05T23:49:57Z"}}
{"osv":{"id":"GO-2026-6599","summary":"Reset context tracking in html/template"}}
{"osv":{"id":"GO-2026-0001","summary":"A bug in a module"}}
{"finding":{"osv":"GO-2026-6599","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"html/template","function":"Execute","receiver":"*Template"},{"module":"ferry.dev/ferry","package":"ferry.dev/ferry/internal/controllerd","function":"Start"}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.2.4","trace":[{"module":"example.com/m","version":"v1.2.3","package":"example.com/m/p"}]}}
`

const reached = `{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.2.4","trace":[{"module":"example.com/m","version":"v1.2.3","package":"example.com/m/p","function":"F"}]}}
`

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		strict   bool
		fails    string
		prints   []string
	}{
		{name: "stdlib only", in: stream, prints: []string{"GO-2026-6599  stdlib@v1.26.8, fixed in v1.26.9", "1 in the standard library"}},
		{name: "stdlib only, strict", in: stream, strict: true, fails: "standard library"},
		{name: "a module reached", in: stream + reached, fails: "1 vulnerabilities in required modules", prints: []string{"GO-2026-0001  example.com/m@v1.2.3, fixed in v1.2.4: A bug in a module"}},
		{name: "nothing", in: `{"config":{}}`, prints: []string{"no known vulnerability reached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := readReport([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = r.print(&out, tc.strict)
			if (err != nil) != (tc.fails != "") || (err != nil && !strings.Contains(err.Error(), tc.fails)) {
				t.Errorf("err = %v, want one containing %q", err, tc.fails)
			}
			for _, p := range tc.prints {
				if !strings.Contains(out.String(), p) {
					t.Errorf("output lacks %q:\n%s", p, out.String())
				}
			}
		})
	}
}

func TestPseudoVersionTime(t *testing.T) {
	got, err := pseudoVersionTime(vulndbVersion)
	if err != nil || !got.Equal(time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)) {
		t.Errorf("pseudoVersionTime(%s) = %v, %v", vulndbVersion, got, err)
	}
	if _, err := pseudoVersionTime("v1.2.3"); err == nil {
		t.Error("a release version passed as a pseudo-version")
	}
}
