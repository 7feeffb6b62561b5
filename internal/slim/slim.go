package slim

import (
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Metadata drops obj's managed fields and shares its labels' and
// annotations' strings with every other object that has the same ones. It
// changes obj in place: call it only on an object that nothing else holds
// yet, as a cache transform is given. The maps are rebuilt, so the
// decoder's copies are freed.
func Metadata(obj metav1.Object) {
	obj.SetManagedFields(nil)
	obj.SetLabels(Strings(obj.GetLabels()))
	obj.SetAnnotations(Strings(obj.GetAnnotations()))
	obj.SetNamespace(String(obj.GetNamespace()))
}

// Strings returns a copy of m with every key and value shared.
func Strings(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[String(k)] = String(v)
	}
	return out
}

// String returns the shared copy of s. unique holds it weakly: a value no
// object uses any more is dropped.
func String(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// Transform is a cache transform that applies Metadata to every object
// (and passes anything else, such as a deleted-object tombstone, through).
func Transform(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		Metadata(o)
	}
	return obj, nil
}
