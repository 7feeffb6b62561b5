package contract

import (
	"fmt"
	"slices"
	"strings"

	"ferry.dev/ferry/internal/identity"
)

// Who may use an imported Service (docs/contracts.md, "Egress callers").
// By default a pod may use the egress ports of a mirror or clusterset
// Service only if it runs in that Service's namespace (MCS namespace
// sameness: the consumer of a ServiceImport is its namespace). The
// Service's Namespace may widen that with AnnotationEgressCallers; it is an
// annotation of the Namespace, not of the Service, because tenants can
// write their Services but usually not their Namespace.
const (
	// AnnotationEgressCallers on a Namespace lists, comma-separated, the
	// other namespaces whose pods may use the namespace's mirror and
	// clusterset Services, or is EgressCallersAny.
	AnnotationEgressCallers = Prefix + "egress-callers"
	// EgressCallersAny lets pods of every namespace in.
	EgressCallersAny = "*"
)

// MaxEgressCallerNamespaces bounds the list in AnnotationEgressCallers, so
// that a Namespace cannot make the gateway hold an arbitrarily large set
// per namespace; a longer list is invalid (and so allows no one extra).
const MaxEgressCallerNamespaces = 256

// EgressCallers is a parsed AnnotationEgressCallers: the namespaces, other
// than its own, whose pods may use a namespace's imports. The zero value
// allows no other namespace.
type EgressCallers struct {
	// Any allows every namespace.
	Any bool
	// Namespaces are sorted and distinct.
	Namespaces []string
}

// Allows reports whether pods of namespace ns may use imports of a
// namespace whose annotation is c. A namespace's own pods are allowed by
// the caller of Allows, not here.
func (c EgressCallers) Allows(ns string) bool {
	if c.Any {
		return true
	}
	_, ok := slices.BinarySearch(c.Namespaces, ns)
	return ok
}

// ParseEgressCallers parses AnnotationEgressCallers. An empty value allows
// no other namespace. A value that does not parse is an error, and the
// caller must then allow no other namespace (fail closed): a typo never
// opens a namespace wider than it was.
func ParseEgressCallers(v string) (EgressCallers, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return EgressCallers{}, nil
	}
	if v == EgressCallersAny {
		return EgressCallers{Any: true}, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > MaxEgressCallerNamespaces {
		return EgressCallers{}, fmt.Errorf("%s: %d namespaces, at most %d", AnnotationEgressCallers, len(parts), MaxEgressCallerNamespaces)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == EgressCallersAny {
			return EgressCallers{}, fmt.Errorf("%s: %q must stand alone", AnnotationEgressCallers, EgressCallersAny)
		}
		if err := identity.ValidateDNSLabel(p); err != nil {
			return EgressCallers{}, fmt.Errorf("%s: namespace %q: %w", AnnotationEgressCallers, p, err)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return EgressCallers{Namespaces: slices.Compact(out)}, nil
}
