package certsecret

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestParseNamesTheKeyAtFault(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	good := leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle)
	for _, k := range []string{CertKey, KeyKey, BundleKey} {
		d := map[string][]byte{CertKey: good[CertKey], KeyKey: good[KeyKey], BundleKey: good[BundleKey]}
		d[k] = []byte("junk")
		_, _, err := Parse(d, mesh.Domain)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s broken: %v", k, err)
		}
		if err != nil && strings.Contains(err.Error(), "junk") {
			t.Errorf("%s: error quotes the content: %v", k, err)
		}
	}
	if _, _, err := Parse(good, mesh.Domain); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	a := map[string][]byte{CertKey: []byte("ab"), KeyKey: []byte("c"), BundleKey: []byte("d")}
	b := map[string][]byte{CertKey: []byte("a"), KeyKey: []byte("bc"), BundleKey: []byte("d")}
	if Fingerprint(a) == Fingerprint(b) {
		t.Fatal("moving a byte between keys kept the fingerprint")
	}
	a2 := map[string][]byte{CertKey: []byte("ab"), KeyKey: []byte("c"), BundleKey: []byte("d"), "other": []byte("x")}
	if Fingerprint(a) != Fingerprint(a2) {
		t.Fatal("an unrelated key changed the fingerprint")
	}
}
