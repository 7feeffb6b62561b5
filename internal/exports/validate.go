package exports

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"ferry.dev/ferry/internal/contract"
)

// Limits on one export. They keep every export far below the feed's message
// limit, so a snapshot can always be chunked, and they bound what a single
// ServiceExport can make every importer store.
const (
	// MaxExportedMetadataBytes bounds the total size of keys and values of
	// exportedLabels plus exportedAnnotations. Beyond it the export is
	// invalid: dropping some entries would export something the user did not
	// ask for.
	MaxExportedMetadataBytes = 16 << 10
	// MaxHostnames bounds the ready hostnames a Headless export carries.
	// Each becomes a host mirror in every importing cluster (a Service, a
	// ClusterIP and one egress port per exported port), so the bound is
	// what one export may cost a cluster that did not choose it. Beyond it
	// the list is cut (sorted, so deterministically): the pods past the cut
	// have no name in importing clusters, and the export's Valid condition
	// says so.
	MaxHostnames = 256
	// MaxPorts bounds the ports of one export. Beyond it the export is
	// invalid.
	MaxPorts = 128
	// MaxAllowedClusters bounds the entries of ferry.dev/allowed-clusters.
	MaxAllowedClusters = 256
)

// MaxTrafficDistributionBytes bounds a Service's trafficDistribution, which
// Kubernetes leaves open to new values ("PreferClose", "PreferSameZone",
// "PreferSameNode" today).
const MaxTrafficDistributionBytes = 63

// ValidTrafficDistribution accepts "" or a value shaped like Kubernetes'
// (letters only, bounded), so an importer copies nothing else onto its
// ServiceImport.
func ValidTrafficDistribution(v string) bool {
	if len(v) > MaxTrafficDistributionBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// reservedDomains are label and annotation key prefixes (with their
// subdomains) that an export may not carry to importers: on a mirror they
// would forge Ferry's ownership labels, the MCS labels, or keys that
// Kubernetes interprets (service.kubernetes.io/service-proxy-name would make
// kube-proxy ignore the mirror).
var reservedDomains = []string{
	strings.TrimSuffix(contract.Prefix, "/"),
	"kubernetes.io",
	"k8s.io",
}

// allowedDomains are exceptions: Kubernetes' recommended labels
// (app.kubernetes.io/name, ...) describe an application and change no
// behaviour, and are what users most want to export.
var allowedDomains = []string{"app.kubernetes.io"}

// ReservedKey reports whether a label or annotation key is one no export may
// carry. Importers check it too: they must not trust the exporter to.
func ReservedKey(k string) bool {
	prefix, _, ok := strings.Cut(k, "/")
	if !ok {
		return false
	}
	prefix = strings.ToLower(prefix)
	if slices.Contains(allowedDomains, prefix) {
		return false
	}
	for _, d := range reservedDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

// ParseAllowedClusters reads the ferry.dev/allowed-clusters annotation. Absent
// (ok false) means every cluster and returns nil. Present returns a non-nil,
// sorted, de-duplicated list; entries that are not cluster names are left
// out and reported, so a typo narrows the set rather than widening it: the
// list fails closed, and an annotation with no valid entry admits no
// cluster.
func ParseAllowedClusters(value string, ok bool) (allowed []string, warnings []string) {
	if !ok {
		return nil, nil
	}
	allowed = []string{}
	for raw := range strings.SplitSeq(value, ",") {
		c := strings.TrimSpace(raw)
		if c == "" {
			continue
		}
		if err := contract.ValidateClusterName(c); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: ignored entry: %v", contract.AnnotationAllowedClusters, err))
			continue
		}
		if !slices.Contains(allowed, c) {
			allowed = append(allowed, c)
		}
	}
	if len(allowed) > MaxAllowedClusters {
		warnings = append(warnings, fmt.Sprintf("%s: only the first %d clusters are used", contract.AnnotationAllowedClusters, MaxAllowedClusters))
		allowed = allowed[:MaxAllowedClusters]
	}
	sort.Strings(allowed)
	return allowed, warnings
}
