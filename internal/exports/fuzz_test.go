package exports

import (
	"slices"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/contract"
)

// FuzzParseAllowedClusters reads ferry.dev/allowed-clusters, which the
// owner of a ServiceExport writes. The list fails closed: only valid
// cluster names, sorted and distinct, at most MaxAllowedClusters, and never
// nil when the annotation is present.
func FuzzParseAllowedClusters(f *testing.F) {
	f.Add("east, north,east", true)
	f.Add("", true)
	f.Add("clusterset,East,-x", true)
	f.Add("east", false)
	f.Fuzz(func(t *testing.T, v string, present bool) {
		got, _ := ParseAllowedClusters(v, present)
		if !present {
			if got != nil {
				t.Fatalf("absent annotation gave %v, want nil (every cluster)", got)
			}
			return
		}
		if got == nil {
			t.Fatal("a present annotation gave nil, which would admit every cluster")
		}
		if len(got) > MaxAllowedClusters || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("%v: not sorted, distinct and bounded", got)
		}
		for _, c := range got {
			if contract.ValidateClusterName(c) != nil {
				t.Fatalf("invalid cluster name %q admitted", c)
			}
		}
	})
}

// FuzzReservedKey: a key in Ferry's, Kubernetes' or a subdomain of their
// domains is reserved, whatever its case, except app.kubernetes.io.
func FuzzReservedKey(f *testing.F) {
	for _, k := range []string{"ferry.dev/link", "FERRY.DEV/link", "x.kubernetes.io/y", "app.kubernetes.io/name", "team", "k8s.io/x", "evilk8s.io/x"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		prefix, _, ok := strings.Cut(k, "/")
		lower := strings.ToLower(prefix)
		must := ok && lower != "app.kubernetes.io" && (lower == "ferry.dev" || strings.HasSuffix(lower, ".ferry.dev") ||
			lower == "kubernetes.io" || strings.HasSuffix(lower, ".kubernetes.io") ||
			lower == "k8s.io" || strings.HasSuffix(lower, ".k8s.io"))
		if must && !ReservedKey(k) {
			t.Fatalf("%q is not reserved", k)
		}
	})
}
