package images

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// The SBOM is SPDX 2.3 JSON, built from what the Go linker recorded in the
// binary (the data `go version -m` prints): the main module, every module
// linked in with its version, and the Go toolchain. That is exactly what
// shipped, not what go.mod allows; a scanner (grype, trivy, govulncheck's
// SBOM mode) reads it by purl.

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string            `json:"name"`
	SPDXID                string            `json:"SPDXID"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// SBOM is the SPDX document of one platform image of d: the image contains
// the binary, which depends on the Go standard library and every module.
func SBOM(d Daemon, ref name.Tag, pi PlatformImage, m Meta) ([]byte, error) {
	bi, err := buildinfo.ReadFile(pi.Binary)
	if err != nil {
		return nil, fmt.Errorf("images: SBOM of %s: build info: %w", d.Name, err)
	}
	bin, err := os.ReadFile(pi.Binary)
	if err != nil {
		return nil, fmt.Errorf("images: SBOM of %s: %w", d.Name, err)
	}
	digest, err := pi.Image.Digest()
	if err != nil {
		return nil, fmt.Errorf("images: SBOM of %s: %w", d.Name, err)
	}
	sum := sha256.Sum256(bin)

	image := spdxPackage{
		Name: ref.Context().String(), SPDXID: "SPDXRef-Image", VersionInfo: digest.String(),
		DownloadLocation: noAssertion, PrimaryPackagePurpose: "CONTAINER",
		ExternalRefs: []spdxExternalRef{purlRef(ociPURL(ref, digest.String(), pi.Platform.Architecture))},
	}
	binary := spdxPackage{
		Name: "/" + d.Name, SPDXID: "SPDXRef-Binary", VersionInfo: m.Version,
		DownloadLocation: noAssertion, PrimaryPackagePurpose: "APPLICATION",
		Checksums: []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(sum[:])}},
		Comment:   "built by " + bi.GoVersion + " from " + bi.Path,
	}
	// The purl wants a Go module version, which the toolchain stamps from
	// git (a pseudo-version); the release tag is the package's version.
	main := goModule("SPDXRef-Main", bi.Main.Path, bi.Main.Version, m.Source)
	if m.Version != "" {
		main.VersionInfo = m.Version
	}
	pkgs := []spdxPackage{image, binary, main,
		goModule("SPDXRef-Stdlib", "stdlib", strings.TrimPrefix(bi.GoVersion, "go"), "https://go.dev/dl/"),
	}
	rels := []spdxRelationship{
		{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"},
		{"SPDXRef-Image", "CONTAINS", "SPDXRef-Binary"},
		{"SPDXRef-Binary", "GENERATED_FROM", "SPDXRef-Main"},
		{"SPDXRef-Main", "DEPENDS_ON", "SPDXRef-Stdlib"},
	}
	for i, dep := range bi.Deps {
		mod := dep
		if dep.Replace != nil {
			mod = dep.Replace
		}
		id := fmt.Sprintf("SPDXRef-Module-%d", i)
		p := goModule(id, mod.Path, mod.Version, noAssertion)
		if mod.Sum != "" {
			// go.sum's h1: is a hash of the module's file tree, not of one
			// file, so it is no SPDX checksum; it still pins the module.
			p.Comment = "go.sum " + mod.Sum
		}
		pkgs = append(pkgs, p)
		rels = append(rels, spdxRelationship{"SPDXRef-Main", "DEPENDS_ON", id})
	}
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: ref.String() + " " + pi.Platform.String(),
		// Unique per image, and the same for the same image: the digest.
		DocumentNamespace: "https://ferry.dev/spdx/" + d.Name + "/" + digest.Hex,
		CreationInfo: spdxCreationInfo{
			Created:  m.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: ferry-hack-images", "Organization: Ferry"},
		},
		DocumentDescribes: []string{"SPDXRef-Image"},
		Packages:          pkgs,
		Relationships:     rels,
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("images: SBOM of %s: %w", d.Name, err)
	}
	return append(out, '\n'), nil
}

func goModule(id, path, version, location string) spdxPackage {
	return spdxPackage{
		Name: path, SPDXID: id, VersionInfo: version, DownloadLocation: location,
		PrimaryPackagePurpose: "LIBRARY",
		ExternalRefs:          []spdxExternalRef{purlRef(golangPURL(path, version))},
	}
}

func purlRef(locator string) spdxExternalRef {
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: locator}
}

// golangPURL follows the purl spec's golang type: the module path's
// segments as namespace and name, the version as given.
func golangPURL(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		p += "@" + url.PathEscape(version)
	}
	return p
}

// ociPURL follows the purl spec's oci type: the image's last path element
// as name, the digest as version, the repository and arch as qualifiers.
func ociPURL(ref name.Tag, digest, arch string) string {
	repo := ref.Context()
	last := repo.RepositoryStr()
	if i := strings.LastIndex(last, "/"); i >= 0 {
		last = last[i+1:]
	}
	q := url.Values{}
	q.Set("repository_url", repo.String())
	q.Set("tag", ref.TagStr())
	q.Set("arch", arch)
	return "pkg:oci/" + last + "@" + url.PathEscape(digest) + "?" + q.Encode()
}
