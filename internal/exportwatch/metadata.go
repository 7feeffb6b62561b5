package exportwatch

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"ferry.dev/ferry/internal/exports"
)

// cleanLabels keeps the valid, unreserved exportedLabels.
func cleanLabels(in map[string]string) (map[string]string, []string, int) {
	var out map[string]string
	var warnings []string
	size := 0
	for _, k := range sortedKeys(in) {
		v := in[k]
		switch {
		case exports.ReservedKey(k):
			warnings = append(warnings, fmt.Sprintf("exportedLabels: %q is reserved and not exported", k))
		case len(validation.IsQualifiedName(k)) > 0:
			warnings = append(warnings, fmt.Sprintf("exportedLabels: %q is not a valid label key", k))
		case len(validation.IsValidLabelValue(v)) > 0:
			warnings = append(warnings, fmt.Sprintf("exportedLabels: the value of %q is not a valid label value", k))
		default:
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
			size += len(k) + len(v)
		}
	}
	return out, warnings, size
}

// cleanAnnotations keeps the valid, unreserved exportedAnnotations.
func cleanAnnotations(in map[string]string) (map[string]string, []string, int) {
	var out map[string]string
	var warnings []string
	size := 0
	for _, k := range sortedKeys(in) {
		switch {
		case exports.ReservedKey(k):
			warnings = append(warnings, fmt.Sprintf("exportedAnnotations: %q is reserved and not exported", k))
		case len(validation.IsQualifiedName(strings.ToLower(k))) > 0:
			warnings = append(warnings, fmt.Sprintf("exportedAnnotations: %q is not a valid annotation key", k))
		default:
			if out == nil {
				out = map[string]string{}
			}
			out[k] = in[k]
			size += len(k) + len(in[k])
		}
	}
	return out, warnings, size
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
