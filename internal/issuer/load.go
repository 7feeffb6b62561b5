package issuer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/identity"
)

var errIssuerMissing = errors.New("issuer Secret not found")

// loadIssuer makes i.ca and i.bundle match the issuer Secret as it is now.
// A missing or invalid Secret leaves no issuer at all, rather than the last
// good one: every replica then agrees, and deleting the Secret is a way to
// stop all issuance at once.
func (i *Issuer) loadIssuer(now time.Time) {
	s := i.issuerW.Secret()
	if s == nil {
		i.setIssuer(nil, nil, [sha256.Size]byte{}, errIssuerMissing, s)
		return
	}
	fp := certsecret.Fingerprint(s.Data)
	if fp == i.issuerFP && i.ca != nil {
		// Same issuer as before; it may only have run out of time.
		if err := checkValidity(i.ca, now); err != nil {
			i.setIssuer(nil, nil, fp, err, s)
		}
		return
	}
	// An unusable issuer is parsed again on every pass (passes back off
	// then), so one that was merely not valid yet recovers by itself.
	ca, bundle, err := i.parseIssuer(s, now)
	i.setIssuer(ca, bundle, fp, err, s)
}

func (i *Issuer) parseIssuer(s *corev1.Secret, now time.Time) (*identity.CA, *identity.Bundle, error) {
	for _, k := range []string{certsecret.CertKey, certsecret.KeyKey, certsecret.BundleKey} {
		if len(s.Data[k]) == 0 {
			return nil, nil, fmt.Errorf("%s is missing or empty", k)
		}
	}
	ca, bundle, err := identity.LoadIssuer(s.Data[certsecret.CertKey], s.Data[certsecret.KeyKey], s.Data[certsecret.BundleKey])
	if err != nil {
		return nil, nil, err
	}
	// The deny list is part of the trust this Secret carries: refused with
	// it rather than skipped, so that a bad edit never un-revokes a key.
	revoked, err := identity.ParseRevoked(s.Data[certsecret.RevokedKey])
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certsecret.RevokedKey, err)
	}
	if bundle, err = bundle.WithRevoked(revoked...); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certsecret.RevokedKey, err)
	}
	if bundle.IsRevoked(ca.Cert) {
		return nil, nil, fmt.Errorf("%w: this cluster's own issuer is on its deny list (%s); every leaf it signs would be refused",
			identity.ErrRevoked, certsecret.RevokedKey)
	}
	td, err := ca.TrustDomain()
	if err != nil {
		return nil, nil, err
	}
	if want := i.gatewayID.TrustDomain(); td != want {
		return nil, nil, fmt.Errorf("%w: issuer is for %s, this controller is %s", identity.ErrTrustDomainNotPermitted, td, want)
	}
	if err := checkValidity(ca, now); err != nil {
		return nil, nil, err
	}
	// Leaves take their validity from the issuer's clock, so that an
	// injected clock governs both issuing and renewing.
	ca.Now = i.opts.Clock.Now
	return ca, bundle, nil
}

// checkValidity refuses an issuer outside its validity period: leaves are
// clamped to its NotAfter, so an expired one would sign dead leaves.
func checkValidity(ca *identity.CA, now time.Time) error {
	c := ca.Cert
	switch {
	case !now.Before(c.NotAfter):
		return fmt.Errorf("%w: issuer expired at %s", identity.ErrExpired, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("%w: issuer valid from %s", identity.ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func (i *Issuer) setIssuer(ca *identity.CA, bundle *identity.Bundle, fp [sha256.Size]byte, err error, s *corev1.Secret) {
	changed := fp != i.issuerFP
	i.ca, i.bundle, i.issuerFP, i.issuerErr = ca, bundle, fp, err
	ref := i.secretRef(i.opts.IssuerSecret, s)
	switch {
	case err == nil:
		i.metrics.setExpiry(certIssuer, ca.Cert.NotAfter)
		note := fmt.Sprintf("issuer %s (serial %x, until %s), %d root(s) in the bundle", ca.Cert.Subject.CommonName,
			ca.Cert.SerialNumber, ca.Cert.NotAfter.UTC().Format(time.RFC3339), len(bundle.Roots()))
		if n := len(bundle.Revoked()); n > 0 {
			note += fmt.Sprintf(", %d revoked key(s)", n)
		}
		i.log.Info("loaded issuer", "issuer", ca.String(), "roots", len(bundle.Roots()), "revoked", len(bundle.Revoked()))
		// The first load of a healthy issuer is routine; a recovery or a
		// replaced issuer is news.
		if i.issuerNote != "" && (i.issuerNote != note || changed) {
			i.event(ref, corev1.EventTypeNormal, EventIssuerLoaded, eventActionLoad, "loaded "+note)
		}
		i.issuerNote = note
	default:
		i.metrics.setExpiry(certIssuer, time.Time{})
		reason := EventIssuerInvalid
		if errors.Is(err, errIssuerMissing) {
			reason = EventIssuerMissing
		}
		note := fmt.Sprintf("cannot issue certificates from Secret %s/%s: %v", i.opts.Namespace, i.opts.IssuerSecret, err)
		if note != i.issuerNote {
			i.log.Error("issuer unusable; leaves will not be renewed until it is fixed",
				"secret", i.opts.Namespace+"/"+i.opts.IssuerSecret, "err", err)
			i.event(ref, corev1.EventTypeWarning, reason, eventActionLoad, note)
		}
		i.issuerNote = note
	}
}
