package exports

import (
	"maps"
	"slices"
)

// Equal reports whether e and o describe the same export. Created is compared
// as an instant. AllowedClusters distinguishes nil (every cluster) from empty
// (no cluster): they mean opposite things, so they must never compare equal.
func (e *Export) Equal(o *Export) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.Key == o.Key &&
		e.Type == o.Type &&
		slices.Equal(e.Ports, o.Ports) &&
		e.SessionAffinity == o.SessionAffinity &&
		e.SessionAffinityTimeoutSeconds == o.SessionAffinityTimeoutSeconds &&
		e.InternalTrafficPolicy == o.InternalTrafficPolicy &&
		e.TrafficDistribution == o.TrafficDistribution &&
		e.Created.Equal(o.Created) &&
		maps.Equal(e.Labels, o.Labels) &&
		maps.Equal(e.Annotations, o.Annotations) &&
		e.ReadyEndpoints == o.ReadyEndpoints &&
		slices.Equal(e.Hostnames, o.Hostnames) &&
		(e.AllowedClusters == nil) == (o.AllowedClusters == nil) &&
		slices.Equal(e.AllowedClusters, o.AllowedClusters) &&
		slices.EqualFunc(e.LocalPods, o.LocalPods, func(a, b LocalPod) bool {
			return a.Hostname == b.Hostname && slices.Equal(a.Addresses, b.Addresses)
		}) &&
		slices.Equal(e.LocalPorts, o.LocalPorts) &&
		slices.Equal(e.LocalClusterIPs, o.LocalClusterIPs)
}

// Diff returns the keys whose export differs between old and new (added,
// removed or changed), sorted.
func Diff(old, new map[Key]Export) []Key {
	var keys []Key
	for k, n := range new {
		if o, ok := old[k]; !ok || !o.Equal(&n) {
			keys = append(keys, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			keys = append(keys, k)
		}
	}
	SortKeys(keys)
	return keys
}

// SortKeys sorts keys by namespace, then name.
func SortKeys(keys []Key) {
	slices.SortFunc(keys, CompareKeys)
}

// CompareKeys orders keys by namespace, then name.
func CompareKeys(a, b Key) int {
	if a.Namespace != b.Namespace {
		if a.Namespace < b.Namespace {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}
