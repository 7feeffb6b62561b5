package identity

import (
	"crypto/x509"
	"time"
)

// Renewal happens at two thirds of a leaf's life: late enough not to churn,
// early enough that a controller outage of up to a third of the lifetime
// (8h for the default 24h) does not let the gateway's leaf expire.
const (
	renewNumerator   = 2
	renewDenominator = 3
)

// RenewalTime is when a leaf should be replaced.
func RenewalTime(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotBefore.Add(life / renewDenominator * renewNumerator)
}

// NeedsRenewal reports whether leaf is missing or due for renewal at now.
func NeedsRenewal(leaf *x509.Certificate, now time.Time) bool {
	return leaf == nil || !now.Before(RenewalTime(leaf))
}

// TimeLeft is how long leaf stays valid after now (negative once expired).
func TimeLeft(leaf *x509.Certificate, now time.Time) time.Duration { return leaf.NotAfter.Sub(now) }
