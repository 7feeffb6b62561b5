package steering

import (
	"fmt"
	"slices"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Route kinds Ferry reads.
const (
	KindTCPRoute  = "TCPRoute"
	KindHTTPRoute = "HTTPRoute"
)

// ParentGroup and ParentKind are what a route's parentRef names to steer a
// clusterset service: its ServiceImport, the MCS API's name for the
// service across the clusterset. Routes whose parentRefs name anything else
// are another implementation's, and Ferry leaves them and their status
// alone.
const (
	ParentGroup = "multicluster.x-k8s.io"
	ParentKind  = "ServiceImport"
)

// route is a TCPRoute or an HTTPRoute, reduced to what Resolve reads.
type route struct {
	kind, namespace, name string
	generation            int64
	created               time.Time
	parents               []gwv1.ParentReference
	// unsupported names the features the route uses that Ferry does not
	// implement; a route that uses any is not accepted.
	unsupported []string
	backends    []gwv1.BackendRef
}

func (r *route) String() string { return r.kind + " " + r.namespace + "/" + r.name }

func fromTCPRoute(tr *gwv1.TCPRoute) route {
	r := route{
		kind: KindTCPRoute, namespace: tr.Namespace, name: tr.Name, generation: tr.Generation,
		created: tr.CreationTimestamp.Time, parents: tr.Spec.ParentRefs,
	}
	if len(tr.Spec.Rules) != 1 {
		r.unsupported = append(r.unsupported, fmt.Sprintf("%d rules (Ferry implements exactly one)", len(tr.Spec.Rules)))
	}
	for _, rule := range tr.Spec.Rules {
		r.backends = append(r.backends, rule.BackendRefs...)
	}
	return r
}

func fromHTTPRoute(hr *gwv1.HTTPRoute) route {
	r := route{
		kind: KindHTTPRoute, namespace: hr.Namespace, name: hr.Name, generation: hr.Generation,
		created: hr.CreationTimestamp.Time, parents: hr.Spec.ParentRefs,
	}
	add := func(feature string) {
		if !slices.Contains(r.unsupported, feature) {
			r.unsupported = append(r.unsupported, feature)
		}
	}
	if len(hr.Spec.Hostnames) > 0 {
		add("hostnames")
	}
	if len(hr.Spec.Rules) != 1 {
		add(fmt.Sprintf("%d rules (Ferry implements exactly one)", len(hr.Spec.Rules)))
	}
	for _, rule := range hr.Spec.Rules {
		if !matchesEverything(rule.Matches) {
			add("matches")
		}
		if len(rule.Filters) > 0 {
			add("filters")
		}
		if rule.Timeouts != nil {
			add("timeouts")
		}
		if rule.Retry != nil {
			add("retry")
		}
		if rule.SessionPersistence != nil {
			add("sessionPersistence")
		}
		for _, b := range rule.BackendRefs {
			if len(b.Filters) > 0 {
				add("backendRef filters")
			}
			r.backends = append(r.backends, b.BackendRef)
		}
	}
	return r
}

// matchesEverything reports whether matches select every request: none,
// or the API server's default of one PathPrefix "/" match.
func matchesEverything(ms []gwv1.HTTPRouteMatch) bool {
	switch len(ms) {
	case 0:
		return true
	case 1:
		m := ms[0]
		prefix := m.Path != nil && (m.Path.Type == nil || *m.Path.Type == gwv1.PathMatchPathPrefix) && m.Path.Value != nil && *m.Path.Value == "/"
		return prefix && len(m.Headers) == 0 && len(m.QueryParams) == 0 && m.Method == nil
	}
	return false
}

// ours reports whether p names a ServiceImport, and which (namespace, name).
func ours(p gwv1.ParentReference, routeNS string) (ns, name string, ok bool) {
	if p.Group == nil || string(*p.Group) != ParentGroup || p.Kind == nil || string(*p.Kind) != ParentKind {
		return "", "", false
	}
	ns = routeNS
	if p.Namespace != nil {
		ns = string(*p.Namespace)
	}
	return ns, string(p.Name), true
}

// joinFeatures lists features for a condition message.
func joinFeatures(fs []string) string { return strings.Join(fs, ", ") }
