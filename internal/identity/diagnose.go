package identity

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Just enough of RFC 5280 to reach the extensions of a certificate that
// crypto/x509 refused (it rejects a URI SAN containing NUL outright).
type rawCertificate struct {
	TBS struct {
		Raw        asn1.RawContent
		Version    int `asn1:"optional,explicit,default:0,tag:0"`
		Serial     *big.Int
		SigAlg     asn1.RawValue
		Issuer     asn1.RawValue
		Validity   asn1.RawValue
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		IssuerUID  asn1.BitString   `asn1:"optional,tag:1"`
		SubjectUID asn1.BitString   `asn1:"optional,tag:2"`
		Extensions []pkix.Extension `asn1:"optional,explicit,tag:3"`
	}
	SigAlg    asn1.RawValue
	Signature asn1.BitString
}

// hasNULInSAN reports whether any GeneralName in the certificate's SAN
// extension contains a NUL byte. It is used only to name the reason for a
// rejection that has already happened, never to accept anything.
func hasNULInSAN(der []byte) bool {
	var c rawCertificate
	if _, err := asn1.Unmarshal(der, &c); err != nil {
		return false
	}
	for _, ext := range c.TBS.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &names); err != nil {
			return false
		}
		for _, n := range names {
			if bytes.IndexByte(n.Bytes, 0) >= 0 {
				return true
			}
		}
	}
	return false
}
