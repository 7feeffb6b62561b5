package mirror

import (
	"encoding/json"
	"testing"

	"ferry.dev/ferry/internal/contract"
)

// FuzzParseExportedKeys reads the record of exported keys from a mirror's
// annotation, which anyone who may edit the mirror can change. A record
// that parses must marshal back to a record that parses the same.
func FuzzParseExportedKeys(f *testing.F) {
	f.Add(`{"labels":["app"],"annotations":["team"]}`)
	f.Add(`{"labels":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, v string) {
		k, ok := ParseExportedKeys(map[string]string{contract.AnnotationExportedKeys: v})
		if !ok {
			return
		}
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		again, ok := ParseExportedKeys(map[string]string{contract.AnnotationExportedKeys: string(b)})
		if !ok || len(again.Labels) != len(k.Labels) || len(again.Annotations) != len(k.Annotations) {
			t.Fatalf("%q: round trip gives %+v, %v", v, again, ok)
		}
	})
}
