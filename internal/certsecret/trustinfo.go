package certsecret

import (
	"crypto/x509"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/identity"
)

// What a daemon trusts and presents, by key fingerprint ("sha256:<hex>" of
// the SubjectPublicKeyInfo, as `ferry identity inspect` prints it and a deny
// list names it). Secrets say what the controller wrote; these say what
// each running process loaded, which is what a trust rotation must wait
// for before its next phase (`ferry check`, docs/identity.md "Rotation").
// Their cardinality is the roots of the bundle plus one.
var (
	trustRootDesc = prometheus.NewDesc("ferry_trust_root_info",
		"1 for each root of the trust bundle in use, by key fingerprint.",
		[]string{"cert", "root"}, nil)
	certInfoDesc = prometheus.NewDesc("ferry_certificate_info",
		"1 for the leaf in use, by the key fingerprints of the leaf and of the issuer that signed it.",
		[]string{"cert", "leaf", "issuer"}, nil)
)

// TrustCollector reports src's bundle roots and leaf at each scrape. cert
// is the label value: fixed by the caller, never taken from input.
func TrustCollector(cert string, src *identity.Source) prometheus.Collector {
	return trustCollector{cert: cert, src: src}
}

type trustCollector struct {
	cert string
	src  *identity.Source
}

func (c trustCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- trustRootDesc
	ch <- certInfoDesc
}

func (c trustCollector) Collect(ch chan<- prometheus.Metric) {
	if b := c.src.Bundle(); b != nil {
		seen := map[string]bool{}
		for _, r := range b.Roots() {
			fp := KeyFingerprint(r)
			if !seen[fp] {
				seen[fp] = true
				ch <- prometheus.MustNewConstMetric(trustRootDesc, prometheus.GaugeValue, 1, c.cert, fp)
			}
		}
	}
	cert := c.src.Certificate()
	if cert == nil || cert.Leaf == nil {
		return
	}
	issuer := ""
	if len(cert.Certificate) > 1 {
		if ic, err := x509.ParseCertificate(cert.Certificate[1]); err == nil {
			issuer = KeyFingerprint(ic)
		}
	}
	ch <- prometheus.MustNewConstMetric(certInfoDesc, prometheus.GaugeValue, 1, c.cert, KeyFingerprint(cert.Leaf), issuer)
}

// KeyFingerprint is c's key fingerprint as the metrics and deny lists
// write it.
func KeyFingerprint(c *x509.Certificate) string {
	return identity.Revocation{SPKISHA256: identity.SPKIFingerprint(c)}.Fingerprint()
}
