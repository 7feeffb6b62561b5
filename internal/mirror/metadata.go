package mirror

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
)

// Ferry shares the labels and annotations of its objects with other
// controllers (cloud load balancers, meshes, policy engines annotate every
// Service). It compares and writes only the keys it manages and keeps every
// other key as it is, so a foreign key never causes a write and two
// controllers never undo each other's writes forever.
//
// A key is Ferry's on an object when the desired object has it, when it is in
// Ferry's own domain (ferry.dev/), when it is one of the standard keys Ferry
// sets (standardKeys), or when the object's contract.AnnotationExportedKeys
// lists it: that record is how an exported key the remote stopped exporting
// is told apart from a foreign one, and removed.

// standardKeys are the non-ferry.dev keys that Ferry sets on mirrors and
// their slices.
var standardKeys = []string{
	mcsv1beta1.LabelSourceCluster,
	mcsv1beta1.LabelServiceName,
	discoveryv1.LabelServiceName,
	discoveryv1.LabelManagedBy,
}

// ExportedKeys is the value of contract.AnnotationExportedKeys: the label and
// annotation keys of a mirror that were copied from the export.
type ExportedKeys struct {
	Labels      []string `json:"labels,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
}

// ExportedKeysOf is the contract.AnnotationExportedKeys record of labels
// and annotations (an export's): their keys, except those Ferry sets
// itself, sorted, so the same export always gives the same value and the
// record never causes a write by itself.
func ExportedKeysOf(labels, annotations map[string]string) string {
	var k ExportedKeys
	for _, l := range slices.Sorted(maps.Keys(labels)) {
		if !fixedKey(l) {
			k.Labels = append(k.Labels, l)
		}
	}
	for _, a := range slices.Sorted(maps.Keys(annotations)) {
		if !fixedKey(a) {
			k.Annotations = append(k.Annotations, a)
		}
	}
	b, err := json.Marshal(k)
	if err != nil { // a struct of string slices always marshals
		panic(err)
	}
	return string(b)
}

// ParseExportedKeys reads contract.AnnotationExportedKeys from a mirror's
// annotations; ok is false when it is absent or unreadable (a mirror
// written before the record existed, or edited by hand).
func ParseExportedKeys(annotations map[string]string) (k ExportedKeys, ok bool) {
	v, present := annotations[contract.AnnotationExportedKeys]
	if !present || json.Unmarshal([]byte(v), &k) != nil {
		return ExportedKeys{}, false
	}
	return k, true
}

// fixedKey: a key Ferry manages on every object, whether it sets it or not.
func fixedKey(k string) bool {
	return strings.HasPrefix(k, contract.Prefix) || slices.Contains(standardKeys, k)
}

// managedDiffers and mergeManaged compare and merge the keys Ferry manages
// on a mirror or slice: fixed keys and those previous lists.
func managedDiffers(cur, want map[string]string, previous []string) bool {
	return MetadataDiffers(cur, want, managedBy(previous))
}

func mergeManaged(cur, want map[string]string, previous []string) map[string]string {
	return MergeMetadata(cur, want, managedBy(previous))
}

func managedBy(previous []string) func(string) bool {
	return func(k string) bool { return fixedKey(k) || slices.Contains(previous, k) }
}

// MetadataDiffers reports whether the keys a writer manages differ between
// the live map cur and the desired map want: a desired key missing or with
// another value, or a managed key that is no longer desired. Other keys of
// cur (other controllers', a user's) are ignored.
func MetadataDiffers(cur, want map[string]string, managed func(key string) bool) bool {
	for k, v := range want {
		if c, ok := cur[k]; !ok || c != v {
			return true
		}
	}
	for k := range cur {
		if _, ok := want[k]; !ok && managed(k) {
			return true
		}
	}
	return false
}

// MergeMetadata returns cur with the managed keys set as in want: desired
// keys written, managed keys no longer desired removed, others kept.
func MergeMetadata(cur, want map[string]string, managed func(key string) bool) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	maps.DeleteFunc(out, func(k, _ string) bool {
		_, desired := want[k]
		return !desired && managed(k)
	})
	maps.Copy(out, want)
	if len(out) == 0 {
		return nil
	}
	return out
}
