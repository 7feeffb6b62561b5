package issuer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Labels on the gateway Secret. LabelManagedBy=ManagedByValue is also the
// ownership test: a Secret of that name without it is never changed.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "ferry"
)

var gatewaySecretLabels = map[string]string{
	LabelManagedBy:                ManagedByValue,
	"app.kubernetes.io/part-of":   "ferry",
	"app.kubernetes.io/component": "gateway",
	"app.kubernetes.io/name":      contract.GatewayName,
}

// writeSettleTimeout bounds how long our own last write is preferred to a
// cache that has not shown it yet (see written).
const writeSettleTimeout = 30 * time.Second

// syncGateway keeps the gateway Secret's leaf, bundle, labels and condition
// current, writing only what differs. Only the leader calls it.
func (i *Issuer) syncGateway(ctx context.Context, p *plan) {
	s := i.currentGateway(p.now)
	if s != nil && s.Labels[LabelManagedBy] != ManagedByValue {
		i.refuseForeign(s)
		return
	}
	i.notOurs = ""

	var cur *tls.Certificate
	why := "the Secret does not exist"
	if s != nil {
		var err error
		if cur, _, err = certsecret.Parse(s.Data, i.opts.MeshDomain); err != nil {
			why = "unreadable: " + err.Error()
		} else {
			why = i.reissueReason(cur, i.gatewayID, p.now)
		}
	}

	var (
		data     map[string][]byte // new TLS data, nil to keep
		issued   *tls.Certificate
		renewErr error
	)
	switch {
	case why != "":
		issued, renewErr = i.issue(i.gatewayID)
		if renewErr == nil {
			data, renewErr = i.gatewayData(issued)
		}
	case i.bundle != nil && !sameTrust(s.Data, i.bundle):
		// Same leaf, new bundle (roots added or removed, keys revoked or
		// restored): no need for a key.
		why = "trust bundle changed"
		data = maps.Clone(s.Data)
		delete(data, certsecret.RevokedKey)
		maps.Copy(data, certsecret.TrustData(i.bundle))
	}

	leaf := leafOf(cur)
	if issued != nil {
		leaf = issued.Leaf
	}
	reason := assess(leaf, p.now, renewErr)
	if s == nil && data == nil {
		i.gatewayFailed(p, nil, why, renewErr)
		return
	}
	cond := newCondition(reason, conditionMessage(leaf, renewErr), p.now)
	if old, ok := readCondition(s); ok && sameCondition(old, cond) {
		if data == nil {
			cond = old // nothing else changes: keep the Secret as it is
		} else {
			cond.LastTransitionTime = old.LastTransitionTime
		}
	}
	written, err := i.writeGateway(ctx, s, data, cond)
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			// Our cache is behind; its watch event brings the next pass.
			i.log.Debug("gateway Secret changed under us; retrying", "err", err)
			p.failed = true
			return
		}
		switch {
		case renewErr != nil:
			i.log.Error("cannot record the gateway certificate's condition", "err", err)
		case data != nil:
			renewErr = fmt.Errorf("write Secret: %w", err)
		default:
			p.failed = true
			i.log.Error("cannot update the gateway Secret's labels or condition", "err", err)
			return
		}
		// What was written did not land: judge by the leaf still there.
		i.gatewayFailed(p, cur, why, renewErr)
		return
	}
	if renewErr != nil {
		i.gatewayFailed(p, cur, why, renewErr)
		return
	}
	if issued != nil && written != nil {
		i.metrics.renewals.WithLabelValues(certGateway).Inc()
		note := fmt.Sprintf("issued %s for %s: %s", describeLeaf(issued.Leaf, p.now), i.gatewayID, why)
		i.log.Info("issued gateway certificate", "id", i.gatewayID.String(), "reason", why,
			"serial", fmt.Sprintf("%x", issued.Leaf.SerialNumber), "not_after", issued.Leaf.NotAfter.UTC())
		i.event(i.secretRef(i.opts.GatewaySecret, written), corev1.EventTypeNormal, EventIssued, eventActionIssue, note)
	} else if written != nil && data != nil {
		i.log.Info("updated gateway trust bundle", "roots", len(i.bundle.Roots()), "revoked", len(i.bundle.Revoked()))
	}
	i.report(p, certGateway, leaf, reason, nil)
	i.gwReason = reason
}

// gatewayFailed reports a renewal of the gateway leaf that was needed and
// did not happen; cur is the leaf still in the Secret, if any.
func (i *Issuer) gatewayFailed(p *plan, cur *tls.Certificate, why string, err error) {
	p.failed = true
	i.metrics.failures.WithLabelValues(certGateway).Inc()
	leaf := leafOf(cur)
	reason := assess(leaf, p.now, err)
	i.report(p, certGateway, leaf, reason, err)
	i.log.Error("cannot renew the gateway certificate", "reason", why, "err", err,
		"current", describeLeaf(leaf, p.now), "condition", reason)
	if reason != i.gwReason {
		i.event(i.secretRef(i.opts.GatewaySecret, i.gatewayW.Secret()), corev1.EventTypeWarning,
			conditionEvent("Certificate", reason), eventActionIssue, describeLeaf(leaf, p.now)+"; "+errText(err))
	}
	i.gwReason = reason
}

// refuseForeign reports, once per version, a gateway Secret that Ferry did
// not create: it is neither changed nor deleted.
func (i *Issuer) refuseForeign(s *corev1.Secret) {
	if s.ResourceVersion == i.notOurs {
		return
	}
	i.notOurs = s.ResourceVersion
	i.metrics.failures.WithLabelValues(certGateway).Inc()
	note := fmt.Sprintf("Secret %s/%s lacks the label %s=%s, so Ferry will not write to it; delete it, or add the label to hand it over",
		s.Namespace, s.Name, LabelManagedBy, ManagedByValue)
	i.log.Error("refusing to adopt the gateway Secret", "secret", s.Namespace+"/"+s.Name, "why", note)
	i.event(i.secretRef(i.opts.GatewaySecret, s), corev1.EventTypeWarning, EventNotManaged, eventActionValidate, note)
}

func (i *Issuer) gatewayData(c *tls.Certificate) (map[string][]byte, error) {
	certPEM, keyPEM, err := identity.EncodeLeafPEM(c)
	if err != nil {
		return nil, err
	}
	data := certsecret.TrustData(i.bundle)
	data[certsecret.CertKey], data[certsecret.KeyKey] = certPEM, keyPEM
	return data, nil
}

// sameTrust reports whether data already carries b's roots and deny list.
func sameTrust(data map[string][]byte, b *identity.Bundle) bool {
	want := certsecret.TrustData(b)
	return bytes.Equal(data[certsecret.BundleKey], want[certsecret.BundleKey]) &&
		bytes.Equal(data[certsecret.RevokedKey], want[certsecret.RevokedKey])
}

// writeGateway creates or updates the Secret so that it carries data (if
// non-nil), Ferry's labels and cond. It returns the written object, or nil
// if nothing differed.
func (i *Issuer) writeGateway(ctx context.Context, cur *corev1.Secret, data map[string][]byte, cond metav1.Condition) (*corev1.Secret, error) {
	secrets := i.kube.CoreV1().Secrets(i.opts.Namespace)
	var (
		out *corev1.Secret
		err error
	)
	if cur == nil {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: i.opts.GatewaySecret, Namespace: i.opts.Namespace,
				Labels:      maps.Clone(gatewaySecretLabels),
				Annotations: map[string]string{AnnotationCondition: encodeCondition(cond)},
			},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		out, err = secrets.Create(ctx, s, metav1.CreateOptions{})
	} else {
		s := cur.DeepCopy()
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		maps.Copy(s.Labels, gatewaySecretLabels)
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[AnnotationCondition] = encodeCondition(cond)
		if data != nil {
			s.Data = data
		}
		if maps.Equal(s.Labels, cur.Labels) && maps.Equal(s.Annotations, cur.Annotations) &&
			maps.EqualFunc(s.Data, cur.Data, bytes.Equal) {
			return nil, nil
		}
		out, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, err
	}
	staleRV := ""
	if cur != nil {
		staleRV = cur.ResourceVersion
	}
	i.written = &written{staleRV: staleRV, obj: out, at: i.opts.Clock.Now()}
	return out, nil
}

// currentGateway is the cached gateway Secret, or our own last write while
// the cache still shows the version that write replaced.
func (i *Issuer) currentGateway(now time.Time) *corev1.Secret {
	s := i.gatewayW.Secret()
	if w := i.written; w != nil {
		stale := (s == nil && w.staleRV == "") || (s != nil && s.ResourceVersion == w.staleRV)
		if stale && now.Sub(w.at) < writeSettleTimeout {
			return w.obj
		}
		i.written = nil
	}
	return s
}

func conditionMessage(leaf *x509.Certificate, err error) string {
	if err == nil {
		return leafSummary(leaf) + "; renewal at " + renewalText(leaf)
	}
	return leafSummary(leaf) + "; " + errText(err)
}

func renewalText(leaf *x509.Certificate) string {
	if leaf == nil {
		return "once issued"
	}
	return identity.RenewalTime(leaf).UTC().Format(time.RFC3339)
}
