package images

import (
	"debug/buildinfo"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestSBOM: the document describes the image, which contains the binary,
// and lists every module the linker recorded in it, by purl, and the Go
// toolchain; it is the same for the same image.
func TestSBOM(t *testing.T) {
	self := probeBinary(t)
	bi, err := buildinfo.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	d := Daemons[1]
	pi := PlatformImage{Platform: amd64, Image: mustImage(t, d, amd64, meta), Binary: self}
	ref, err := name.NewTag("ferry.dev/ferry-gateway:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := SBOM(d, ref, pi, meta)
	if err != nil {
		t.Fatal(err)
	}
	again, err := SBOM(d, ref, pi, meta)
	if err != nil || string(again) != string(raw) {
		t.Errorf("SBOM of the same image differs between runs (%v)", err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" {
		t.Errorf("header: %+v", doc)
	}
	if doc.CreationInfo.Created != "2025-12-05T00:00:00Z" {
		t.Errorf("created %q, want the commit's time", doc.CreationInfo.Created)
	}
	dg := digest(t, pi.Image)
	if !strings.HasSuffix(doc.DocumentNamespace, strings.TrimPrefix(dg, "sha256:")) {
		t.Errorf("namespace %q is not tied to the image %s", doc.DocumentNamespace, dg)
	}
	purls := map[string]bool{}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		ids[p.SPDXID] = true
		for _, r := range p.ExternalRefs {
			purls[r.ReferenceLocator] = true
		}
	}
	for _, dep := range bi.Deps {
		m := dep
		if dep.Replace != nil {
			m = dep.Replace
		}
		if want := golangPURL(m.Path, m.Version); !purls[want] {
			t.Errorf("module %s@%s is linked in but not in the SBOM (want %s)", m.Path, m.Version, want)
		}
	}
	if want := "pkg:golang/stdlib@" + strings.TrimPrefix(bi.GoVersion, "go"); !purls[want] {
		t.Errorf("no %s in the SBOM", want)
	}
	for _, r := range doc.Relationships {
		if !ids[r.Element] && r.Element != "SPDXRef-DOCUMENT" || !ids[r.Related] {
			t.Errorf("relationship %+v names an element that is not in the document", r)
		}
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the test binary records no modules; the test would prove nothing")
	}
}
