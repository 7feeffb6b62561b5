package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// MaxLabelLength is the longest namespace or Service name Kubernetes accepts
// (a DNS label, RFC 1123).
const MaxLabelLength = 63

// ErrInvalidTarget is wrapped by every target validation failure, so callers
// can classify the rejection without parsing messages.
var ErrInvalidTarget = errors.New("invalid target")

// Target names what a tunnel stream wants to reach in the remote cluster: one
// port of one exported Service, or of one pod of a headless one. It is what
// the caller asks for, so ingress must treat it as hostile until Validate
// accepts it.
type Target struct {
	Namespace string
	Service   string
	Port      int
	// Hostname, when set, names the one pod of a headless Service the
	// stream must reach (its EndpointSlice hostname, as in
	// web-1.web.ns.svc). Empty means any ready endpoint of the Service.
	Hostname string
}

// String renders the target as ns/svc:port, or ns/svc:port@hostname; it is
// for logs and errors, never for comparison (compare the fields, after
// Validate).
func (t Target) String() string {
	s := t.Namespace + "/" + t.Service + ":" + strconv.Itoa(t.Port)
	if t.Hostname != "" {
		s += "@" + t.Hostname
	}
	return s
}

// Export is the name of the export this target belongs to, "ns/svc". It is
// the bounded metric label: use it only after the target was authorized.
// It leaves the hostname out on purpose: a headless export has as many
// hostnames as pods, and a label per pod would grow with every rollout.
func (t Target) Export() string { return t.Namespace + "/" + t.Service }

// Validate accepts a target only in the one canonical spelling Kubernetes
// itself uses. It deliberately does not normalize (lower-case, strip a dot,
// resolve an IP): any rewriting would let two spellings reach one backend
// while an authorization check compared another, which is the shape of
// Istio CVE-2021-31921 and Linkerd #4452. Rejecting keeps one name, one
// decision.
func (t Target) Validate() error {
	if err := validateLabel("namespace", t.Namespace, false); err != nil {
		return err
	}
	// Service names are RFC 1035 labels: they must also start with a letter,
	// which additionally rules out anything shaped like a number.
	if err := validateLabel("service", t.Service, true); err != nil {
		return err
	}
	if t.Port < 1 || t.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range 1-65535", ErrInvalidTarget, t.Port)
	}
	// A pod's hostname is an RFC 1123 label (it may start with a digit).
	// The same rule as the names: the hostname that was authorized is the
	// one matched against EndpointSlices, byte for byte.
	if t.Hostname != "" {
		if err := validateLabel("hostname", t.Hostname, false); err != nil {
			return err
		}
	}
	return nil
}

func validateLabel(what, s string, mustStartWithLetter bool) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidTarget, what)
	case len(s) > MaxLabelLength:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidTarget, what, MaxLabelLength)
	}
	// IP literals get their own message because they are the classic way to
	// reach a backend that was never exported; the label check below would
	// reject them too.
	if _, err := netip.ParseAddr(s); err == nil {
		return fmt.Errorf("%w: %s is an IP literal", ErrInvalidTarget, what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9':
			if i == 0 && mustStartWithLetter {
				return fmt.Errorf("%w: %s must start with a letter", ErrInvalidTarget, what)
			}
		case c == '-':
			if i == 0 || i == len(s)-1 {
				return fmt.Errorf("%w: %s must start and end with a letter or digit", ErrInvalidTarget, what)
			}
		case c >= 'A' && c <= 'Z':
			return fmt.Errorf("%w: %s has upper-case letters", ErrInvalidTarget, what)
		case c == '.':
			return fmt.Errorf("%w: %s contains a dot", ErrInvalidTarget, what)
		default:
			return fmt.Errorf("%w: %s has byte 0x%02x outside [a-z0-9-]", ErrInvalidTarget, what, c)
		}
	}
	return nil
}
