package issuer

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/identity"
)

// reissueReason says why cert (a leaf chain with its key) must be replaced
// at now, or "" if it may stay. Without an issuer, only what can be judged
// from the leaf alone is checked.
func (i *Issuer) reissueReason(cert *tls.Certificate, want identity.ID, now time.Time) string {
	if cert == nil || cert.Leaf == nil {
		return "no certificate"
	}
	leaf := cert.Leaf
	id, err := identity.IDFromCertificate(leaf, i.opts.MeshDomain)
	if err != nil {
		return fmt.Sprintf("unreadable identity: %v", err)
	}
	if id != want {
		return fmt.Sprintf("identity is %s, want %s", id, want)
	}
	if identity.NeedsRenewal(leaf, now) {
		return "due for renewal at " + identity.RenewalTime(leaf).UTC().Format(time.RFC3339)
	}
	if i.ca == nil {
		return ""
	}
	if len(cert.Certificate) < 2 || !bytes.Equal(cert.Certificate[1], i.ca.Cert.Raw) ||
		leaf.CheckSignatureFrom(i.ca.Cert) != nil {
		return "signed by another issuer"
	}
	// A leaf may live up to the configured TTL plus the backdate; a longer
	// one predates a shorter --leaf-ttl and is replaced now rather than
	// keeping its old, longer life.
	if lifetime(leaf) > i.opts.LeafTTL+identity.MaxBackdate+time.Second {
		return fmt.Sprintf("lifetime %s exceeds the configured %s", lifetime(leaf), i.opts.LeafTTL)
	}
	return ""
}

// syncController keeps this replica's own leaf, in memory only.
func (i *Issuer) syncController(p *plan) {
	cur := i.controller.Certificate()
	if i.bundle != nil && i.controller.Bundle() != i.bundle {
		_ = i.controller.SetBundle(i.bundle) // non-nil: cannot fail
	}
	var renewErr error
	if why := i.reissueReason(cur, i.ctrlID, p.now); why != "" {
		if next, err := i.issue(i.ctrlID); err != nil {
			renewErr = err
			i.metrics.failures.WithLabelValues(certController).Inc()
			p.failed = true
			i.log.Error("cannot renew the controller certificate", "reason", why, "err", err,
				"current", describeLeaf(leafOf(cur), p.now))
		} else if err := i.controller.SetCertificate(next); err != nil {
			renewErr = err
			p.failed = true
			i.log.Error("cannot use the new controller certificate", "err", err)
		} else {
			cur = next
			i.metrics.renewals.WithLabelValues(certController).Inc()
			i.log.Info("issued controller certificate", "id", i.ctrlID.String(), "reason", why,
				"serial", fmt.Sprintf("%x", next.Leaf.SerialNumber), "not_after", next.Leaf.NotAfter.UTC())
		}
	}
	leaf := leafOf(cur)
	reason := assess(leaf, p.now, renewErr)
	i.report(p, certController, leaf, reason, renewErr)
	switch {
	case leaf != nil && p.now.Before(leaf.NotAfter):
		i.notReady.Store(new(error))
	case renewErr != nil:
		err := fmt.Errorf("no controller certificate: %w", renewErr)
		i.notReady.Store(&err)
	}
	// There is no object for a replica's in-memory leaf; its Events go on
	// the issuer Secret, the thing to fix, and name the replica.
	if reason != i.ctrlReason && (i.ctrlReason != "" || reason != ReasonCurrent) {
		etype := corev1.EventTypeWarning
		if reason == ReasonCurrent {
			etype = corev1.EventTypeNormal
		}
		i.event(i.secretRef(i.opts.IssuerSecret, i.issuerW.Secret()), etype, conditionEvent("ControllerCertificate", reason),
			eventActionIssue, fmt.Sprintf("controller leaf of %s: %s; %s", i.opts.Instance, describeLeaf(leaf, p.now), errText(renewErr)))
	}
	i.ctrlReason = reason
}

// report sets a leaf's metrics and schedules the next pass for it.
func (i *Issuer) report(p *plan, cert string, leaf *x509.Certificate, reason string, renewErr error) {
	i.metrics.setExpiring(cert, expiring(reason))
	if leaf == nil {
		i.metrics.setExpiry(cert, time.Time{})
		return
	}
	i.metrics.setExpiry(cert, leaf.NotAfter)
	if renewErr == nil {
		p.wake(identity.RenewalTime(leaf))
		return
	}
	// Failing: the retry comes from the backoff; these are the moments the
	// condition changes on its own.
	p.wake(expiringAt(leaf))
	p.wake(leaf.NotAfter)
}

// issue makes a new leaf for id from the current issuer.
func (i *Issuer) issue(id identity.ID) (*tls.Certificate, error) {
	if i.ca == nil {
		return nil, fmt.Errorf("no usable issuer: %w", i.issuerErr)
	}
	c, err := i.ca.IssueLeaf(id, i.opts.LeafTTL)
	if err != nil {
		return nil, fmt.Errorf("issue leaf for %s: %w", id, err)
	}
	return c, nil
}

// conditionEvent names the Event for a condition change: prefix+reason, or
// prefix+"Renewed" on recovery.
func conditionEvent(prefix, reason string) string {
	if reason == ReasonCurrent {
		return prefix + "Renewed"
	}
	return prefix + reason
}

func leafOf(c *tls.Certificate) *x509.Certificate {
	if c == nil {
		return nil
	}
	return c.Leaf
}

func errText(err error) string {
	if err == nil {
		return "renewed"
	}
	return "renewal failed: " + err.Error()
}
