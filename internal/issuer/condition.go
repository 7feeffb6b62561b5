package issuer

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
)

// The gateway leaf's renewal condition. Ferry has no resource of its own
// for identity, so the condition lives in an annotation on the Secret it
// describes, as a JSON metav1.Condition; Events and metrics carry the same
// news for alerting.
const (
	// AnnotationCondition holds the condition on the gateway Secret.
	AnnotationCondition = contract.Prefix + "condition-renewed"
	// ConditionRenewed is True while the leaf is current.
	ConditionRenewed = "Renewed"

	// ReasonCurrent: the leaf is from the current issuer and not yet due,
	// or has just been renewed.
	ReasonCurrent = "Current"
	// ReasonRenewalFailing: the leaf is due and renewal failed; it is
	// still valid for more than a sixth of its life.
	ReasonRenewalFailing = "RenewalFailing"
	// ReasonExpiring: as RenewalFailing, with less than a sixth left.
	ReasonExpiring = "Expiring"
	// ReasonExpired: the leaf has expired and was not renewed.
	ReasonExpired = "Expired"
	// ReasonMissing: there is no usable leaf and none could be issued.
	ReasonMissing = "Missing"
)

// Event reasons beyond the condition reasons above.
const (
	EventIssued         = "CertificateIssued"
	EventIssuerMissing  = "IssuerMissing"
	EventIssuerInvalid  = "IssuerInvalid"
	EventIssuerLoaded   = "IssuerLoaded"
	EventNotManaged     = "SecretNotManaged"
	eventActionIssue    = "Issue"
	eventActionLoad     = "LoadIssuer"
	eventActionValidate = "Validate"
)

// assess classifies a leaf from the outcome of its renewal: renewErr is nil
// if no renewal was due or it succeeded.
func assess(leaf *x509.Certificate, now time.Time, renewErr error) string {
	switch {
	case renewErr == nil:
		return ReasonCurrent
	case leaf == nil:
		return ReasonMissing
	}
	left := leaf.NotAfter.Sub(now)
	switch {
	case left <= 0:
		return ReasonExpired
	case left < lifetime(leaf)/expiringDenominator:
		return ReasonExpiring
	}
	return ReasonRenewalFailing
}

// expiring is true for the reasons that the ferry_certificate_expiring
// metric reports.
func expiring(reason string) bool {
	return reason == ReasonExpiring || reason == ReasonExpired || reason == ReasonMissing
}

func lifetime(leaf *x509.Certificate) time.Duration { return leaf.NotAfter.Sub(leaf.NotBefore) }

// expiringAt is when a leaf that is not renewed turns Expiring.
func expiringAt(leaf *x509.Certificate) time.Time {
	return leaf.NotAfter.Add(-lifetime(leaf) / expiringDenominator)
}

func newCondition(reason, message string, now time.Time) metav1.Condition {
	status := metav1.ConditionFalse
	if reason == ReasonCurrent {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type: ConditionRenewed, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second)),
	}
}

// readCondition returns the condition recorded on s, if any parses.
func readCondition(s *corev1.Secret) (metav1.Condition, bool) {
	if s == nil {
		return metav1.Condition{}, false
	}
	raw, ok := s.Annotations[AnnotationCondition]
	if !ok {
		return metav1.Condition{}, false
	}
	var c metav1.Condition
	if err := json.Unmarshal([]byte(raw), &c); err != nil || c.Type != ConditionRenewed {
		return metav1.Condition{}, false
	}
	return c, true
}

// sameCondition compares what matters to readers. The message and time
// are left out on purpose: rewriting the Secret because "time left"
// changed would be churn that every gateway sees as an update.
func sameCondition(a, b metav1.Condition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason
}

func encodeCondition(c metav1.Condition) string {
	b, _ := json.Marshal(c) // strings and a time: cannot fail
	return string(b)
}

// describeLeaf is a human summary for logs and Events, which are read at
// the time they are made. It holds nothing secret.
func describeLeaf(leaf *x509.Certificate, now time.Time) string {
	if leaf == nil {
		return "no usable leaf"
	}
	return fmt.Sprintf("%s (%s left)", leafSummary(leaf), leaf.NotAfter.Sub(now).Truncate(time.Second))
}

// leafSummary is describeLeaf without the time left, for the condition,
// which is stored and read later.
func leafSummary(leaf *x509.Certificate) string {
	if leaf == nil {
		return "no usable leaf"
	}
	return fmt.Sprintf("leaf %x valid until %s", leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
}
