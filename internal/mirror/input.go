package mirror

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// Health is what the importer knows of the remote gateway.
type Health int

const (
	// Healthy: probes succeed (or too few have failed to say otherwise).
	// Mirrors are ready when their export has ready endpoints.
	Healthy Health = iota
	// Unhealthy: the probe failure threshold is reached. Mirrors stay, with
	// every endpoint not-ready, so clients fail fast and clusterset services
	// fail over.
	Unhealthy
	// Stale: unhealthy for longer than the Link's staleness limit. Mirrors
	// are withdrawn.
	Stale
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "Healthy"
	case Unhealthy:
		return "Unhealthy"
	case Stale:
		return "Stale"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// Link is what the desired state needs of a ferryv1.Link.
type Link struct {
	Name    string
	Cluster string
	// Namespaces, if non-empty, limits the import to these namespaces.
	Namespaces []string
	// Selector, if non-nil, limits the import to exports whose exported
	// labels match it.
	Selector labels.Selector
}

// LinkFrom extracts the import policy of l.
func LinkFrom(l *ferryv1.Link) (Link, error) {
	out := Link{Name: l.Name, Cluster: l.Spec.ClusterName, Namespaces: slices.Clone(l.Spec.Namespaces)}
	if l.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(l.Spec.Selector)
		if err != nil {
			return Link{}, fmt.Errorf("link %s: spec.selector: %w", l.Name, err)
		}
		out.Selector = sel
	}
	return out, nil
}

// Lookup tells who holds a name in the local cluster: it returns the object
// (only its metadata is read), or nil when the name is free. The importer
// answers from its informer cache; tests from a map.
type Lookup interface {
	Service(namespace, name string) metav1.Object
	EndpointSlice(namespace, name string) metav1.Object
}

// Objects are the objects a Link already owns (labelled with its name and a
// source cluster), as read from the cache. They are never modified.
type Objects struct {
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
}

// Input is everything the desired state depends on.
type Input struct {
	Link    Link
	Exports []exports.Export
	// Gateway is the local gateway's ready pod addresses.
	Gateway []string
	Health  Health
	// NamespaceExists reports whether a namespace exists and is not being
	// deleted.
	NamespaceExists func(string) bool
	// Owned are this Link's objects; Lookup finds any other holder of a name.
	Owned  Objects
	Lookup Lookup
	// Ports is the egress range; Taken the ports other links hold.
	Ports contract.Range
	Taken Taken
	// Claimed is the egress port each of this Link's keys holds in the port
	// claims (internal/claims): the allocator's memory. A claimed port stays
	// the key's while it is wanted, and taken while it is not, until the
	// claim is released. Nil means there is no record, and the owned
	// Services' targetPorts are the memory instead (unit tests, and the
	// round-trip readers). With a record, a targetPort no claim backs is a
	// hint only, used when that port is free: it keeps an install from
	// before the record on its ports, and lets a forged Service hold nothing.
	Claimed map[PortKey]int32
}

// Memory is the allocator's memory for one writer (a Link, or the
// clusterset reconciler): the ports it holds (held, which stay taken until
// released) and the port each key should keep if it can (current). claimed
// is its port claims, nil when there is no record; fromObjects the
// targetPorts of its Services, which without a record are the memory and
// with one only a hint, used when that port is free.
func Memory(claimed, fromObjects map[PortKey]int32, taken Taken) (held, current map[PortKey]int32) {
	if claimed == nil {
		return fromObjects, fromObjects
	}
	current = make(map[PortKey]int32, len(claimed))
	mine := make(map[int32]bool, len(claimed))
	for k, p := range claimed {
		current[k] = p
		mine[p] = true
	}
	for k, p := range fromObjects {
		if _, ok := claimed[k]; ok {
			continue
		}
		if _, other := holder(taken, p); other || mine[p] {
			continue
		}
		current[k] = p
	}
	return claimed, current
}

// Reason says why an export is not imported.
type Reason string

// Reasons an export is not (fully) imported.
const (
	// NamespaceMissing: the export's namespace does not exist here.
	NamespaceMissing Reason = "NamespaceMissing"
	// NameClash: an object that Ferry does not own for this Link holds the
	// mirror's name.
	NameClash Reason = "NameClash"
	// PortsExhausted: the egress port range has no free port left.
	PortsExhausted Reason = "PortsExhausted"
	// NoTCPPorts: the export has no port the gateway can carry.
	NoTCPPorts Reason = "NoTCPPorts"
)

// Problem is one export that is not imported.
type Problem struct {
	Export exports.Key
	Reason Reason
	// Object is the name that clashes ("Service ns/name"), for NameClash.
	Object string
	// Holder is the Link that holds the name, or "" when no Ferry Link does.
	Holder string
}

// State is the desired state of one Link.
type State struct {
	// Services and Slices, sorted by namespace and name.
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	// Ports is every egress port the Link holds after this state is applied.
	Ports map[PortKey]int32
	// Imported counts the exports that have a mirror, and ImportedKeys
	// names them, sorted.
	Imported     int
	ImportedKeys []exports.Key
	// Problems lists the exports that matched the Link's filters but are not
	// imported, sorted by export and reason.
	Problems []Problem
}
