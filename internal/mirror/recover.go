package mirror

import (
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// Recover rebuilds, from the mirrors a Link already owns, the exports that
// produced them. A controller that restarts uses it as its copy of the
// remote's state until the feed delivers a snapshot: the desired state is
// then exactly what exists (so the restart writes nothing), and health can
// still turn endpoints not-ready while the remote is unreachable
// (requirement III) even though this process never heard from it.
//
// What mirrors do not record is approximated: the export type is reported
// as ClusterSetIP, and an export counts as having ready endpoints when any of
// its slices has a ready endpoint (a mirror that was not-ready because the
// gateway was unhealthy stays not-ready until the feed says otherwise).
func Recover(owned Objects) []exports.Export {
	ready := map[string]bool{}
	for _, s := range owned.Slices {
		mirror := s.Labels[discoveryv1.LabelServiceName]
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				ready[s.Namespace+"/"+mirror] = true
			}
		}
	}
	var out []exports.Export
	for _, s := range owned.Services {
		remote := s.Annotations[contract.AnnotationRemoteService]
		if remote == "" {
			continue
		}
		e := exports.Export{
			Key:             exports.Key{Namespace: s.Namespace, Name: remote},
			Type:            exports.ClusterSetIP,
			SessionAffinity: string(s.Spec.SessionAffinity),
			Labels:          maps.Clone(s.Labels),
			Annotations:     maps.Clone(s.Annotations),
		}
		if e.SessionAffinity == string(corev1.ServiceAffinityNone) {
			e.SessionAffinity = ""
		}
		if e.SessionAffinity != "" {
			e.SessionAffinityTimeoutSeconds = affinityTimeout(s)
		}
		if rec, ok := ParseExportedKeys(s.Annotations); ok {
			// Only the recorded keys came from the export; the rest are
			// other controllers'.
			e.Labels = pick(s.Labels, rec.Labels)
			e.Annotations = pick(s.Annotations, rec.Annotations)
		} else {
			// Written before the record existed, when Ferry owned every key.
			maps.DeleteFunc(e.Labels, func(k, _ string) bool { return fixedKey(k) })
			maps.DeleteFunc(e.Annotations, func(k, _ string) bool { return fixedKey(k) })
		}
		if len(e.Labels) == 0 {
			e.Labels = nil
		}
		if len(e.Annotations) == 0 {
			e.Annotations = nil
		}
		for _, p := range s.Spec.Ports {
			e.Ports = append(e.Ports, exports.Port{
				Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, AppProtocol: ptr.Deref(p.AppProtocol, ""),
			})
		}
		if ready[s.Namespace+"/"+s.Name] {
			e.ReadyEndpoints = 1
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Key, out[j].Key
		return a.Namespace < b.Namespace || a.Namespace == b.Namespace && a.Name < b.Name
	})
	return out
}

// pick returns the entries of m whose keys are listed in keys.
func pick(m map[string]string, keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
