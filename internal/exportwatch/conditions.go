package exportwatch

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/exports"
)

// Condition types and the reasons Ferry uses with them (MCS v1beta1).
const (
	ConditionValid    = string(mcsv1beta1.ServiceExportConditionValid)
	ConditionReady    = string(mcsv1beta1.ServiceExportConditionReady)
	ConditionConflict = string(mcsv1beta1.ServiceExportConditionConflict)

	ReasonExported    = string(mcsv1beta1.ServiceExportReasonExported)
	ReasonFailed      = string(mcsv1beta1.ServiceExportReasonFailed)
	ReasonNoConflicts = string(mcsv1beta1.ServiceExportReasonNoConflicts)
)

// maxConditionMessage bounds condition messages (the API allows 32 KiB;
// a person reads far less), so many warnings cannot make a status write
// fail.
const maxConditionMessage = 2048

func truncate(s string) string {
	if len(s) <= maxConditionMessage {
		return s
	}
	cut := maxConditionMessage - len(" (truncated)")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " (truncated)"
}

// PeerExport is another cluster's export of the same namespace and name, as
// the importer learned it from that cluster's feed. MCS conflicts are
// between the constituent exports of one service across the clusterset.
type PeerExport struct {
	Cluster string
	Export  exports.Export
}

// ConditionInput is everything the conditions of one ServiceExport depend on.
type ConditionInput struct {
	Status exports.Status
	// Export is the computed export, nil when Status is not valid.
	Export *exports.Export
	// LocalCluster is this cluster's name, which breaks ties between exports
	// created in the same second.
	LocalCluster string
	// Peers are other clusters' exports of the same key, if known.
	Peers []PeerExport
}

// DesiredConditions returns the Valid, Ready and Conflict conditions for a
// ServiceExport, sorted by type and without LastTransitionTime (see
// MergeConditions). Messages avoid volatile figures such as endpoint
// counts, so that a condition changes only when its meaning does and the
// status writer stays idle under endpoint churn.
func DesiredConditions(in ConditionInput) []metav1.Condition {
	st := in.Status
	gen := st.Generation
	valid := metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: st.Reason, Message: st.Message, ObservedGeneration: gen}
	ready := metav1.Condition{Type: ConditionReady, ObservedGeneration: gen}
	conflict := metav1.Condition{Type: ConditionConflict, Status: metav1.ConditionFalse, Reason: ReasonNoConflicts, ObservedGeneration: gen}
	if !st.Valid || in.Export == nil {
		valid.Status = metav1.ConditionFalse
		ready.Status, ready.Reason = metav1.ConditionFalse, ReasonFailed
		ready.Message = "not exported: " + st.Message
		conflict.Message = "not exported"
		return finish(conflict, ready, valid)
	}
	e := in.Export
	ready.Status, ready.Reason = metav1.ConditionTrue, ReasonExported
	switch {
	case e.AllowedClusters != nil && len(e.AllowedClusters) == 0:
		ready.Message = "exported, but ferry.dev/allowed-clusters admits no cluster"
	case e.AllowedClusters != nil:
		ready.Message = "exported to clusters " + strings.Join(e.AllowedClusters, ", ")
	default:
		ready.Message = "exported to every linked cluster"
	}
	if e.ReadyEndpoints == 0 {
		ready.Message += "; the Service has no ready endpoints, so importers see it as not ready"
	}
	if reasons, msg := conflicts(*e, in.LocalCluster, in.Peers); len(reasons) > 0 {
		conflict.Status, conflict.Reason, conflict.Message = metav1.ConditionTrue, strings.Join(reasons, ","), msg
	} else {
		conflict.Message = "no conflicting export in any linked cluster"
	}
	return finish(conflict, ready, valid)
}

func finish(cs ...metav1.Condition) []metav1.Condition {
	for i := range cs {
		cs[i].Message = truncate(cs[i].Message)
	}
	return cs
}

// MergeConditions applies desired onto existing as meta.SetStatusCondition
// does: a condition whose status is unchanged keeps its LastTransitionTime,
// and conditions of other types are kept. changed is false when the result
// equals existing, in which case no write is needed.
func MergeConditions(existing, desired []metav1.Condition, now metav1.Time) (merged []metav1.Condition, changed bool) {
	merged = slices.Clone(existing)
	for _, d := range desired {
		cur := meta.FindStatusCondition(merged, d.Type)
		if cur != nil && cur.Status == d.Status && cur.Reason == d.Reason && cur.Message == d.Message && cur.ObservedGeneration == d.ObservedGeneration {
			continue
		}
		changed = true
		d.LastTransitionTime = now
		meta.SetStatusCondition(&merged, d)
	}
	return merged, changed
}

// conflicts compares the local export with its peers. MCS resolves a
// conflict in favour of the oldest export (ties: the cluster name), so the
// local export conflicts when it differs from the winner; when it is the
// winner, it reports the peers that differ from it, as MCS recommends
// raising the condition on every constituent export.
func conflicts(local exports.Export, localCluster string, peers []PeerExport) ([]string, string) {
	if len(peers) == 0 {
		return nil, ""
	}
	all := append([]PeerExport{{Cluster: localCluster, Export: local}}, peers...)
	winner := slices.MinFunc(all, func(a, b PeerExport) int {
		if c := a.Export.Created.Compare(b.Export.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Cluster, b.Cluster)
	})
	if winner.Cluster != localCluster {
		reasons := compareExports(&winner.Export, &local)
		if len(reasons) == 0 {
			return nil, ""
		}
		return reasons, fmt.Sprintf("differs from the oldest export, in cluster %s, whose properties the clusterset uses: %s", winner.Cluster, strings.Join(reasons, ", "))
	}
	var reasons, clusters []string
	for _, p := range peers {
		if r := compareExports(&local, &p.Export); len(r) > 0 {
			reasons = append(reasons, r...)
			clusters = append(clusters, p.Cluster)
		}
	}
	if len(reasons) == 0 {
		return nil, ""
	}
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	slices.Sort(clusters)
	return reasons, fmt.Sprintf("this is the oldest export and wins; the exports in clusters %s differ from it: %s", strings.Join(clusters, ", "), strings.Join(reasons, ", "))
}

// compareExports returns the MCS conflict reasons between two exports of the
// same service, sorted: any property that differs.
func compareExports(a, b *exports.Export) []string {
	var r []string
	if a.Type != b.Type {
		r = append(r, string(mcsv1beta1.ServiceExportReasonTypeConflict))
	}
	if a.SessionAffinity != b.SessionAffinity {
		r = append(r, string(mcsv1beta1.ServiceExportReasonSessionAffinityConflict))
	} else if a.SessionAffinityTimeoutSeconds != b.SessionAffinityTimeoutSeconds {
		r = append(r, string(mcsv1beta1.ServiceExportReasonSessionAffinityConfigConflict))
	}
	if a.InternalTrafficPolicy != b.InternalTrafficPolicy {
		r = append(r, string(mcsv1beta1.ServiceExportReasonInternalTrafficPolicyConflict))
	}
	if a.TrafficDistribution != b.TrafficDistribution {
		r = append(r, string(mcsv1beta1.ServiceExportReasonTrafficDistributionConflict))
	}
	if portsConflict(a.Ports, b.Ports) {
		r = append(r, string(mcsv1beta1.ServiceExportReasonPortConflict))
	}
	if mapsConflict(a.Labels, b.Labels) {
		r = append(r, string(mcsv1beta1.ServiceExportReasonLabelsConflict))
	}
	if mapsConflict(a.Annotations, b.Annotations) {
		r = append(r, string(mcsv1beta1.ServiceExportReasonAnnotationsConflict))
	}
	slices.Sort(r)
	return r
}

// portsConflict: the exports' port sets differ. The clusterset still
// serves the union, except a port whose name or number another, older
// export defines otherwise (the MCS conformance suite raises Conflict on
// both exports for any difference).
func portsConflict(a, b []exports.Port) bool {
	return !slices.Equal(sortedPorts(a), sortedPorts(b))
}

func sortedPorts(ps []exports.Port) []exports.Port {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(x, y exports.Port) int {
		if x.Port != y.Port {
			return int(x.Port - y.Port)
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out
}

// mapsConflict: the exported labels (or annotations) differ, in a key or a
// value. The ServiceImport carries the oldest export's alone, so any
// difference is one that some cluster's users would not see.
func mapsConflict(a, b map[string]string) bool {
	return !maps.Equal(a, b)
}
