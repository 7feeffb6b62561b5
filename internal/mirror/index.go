package mirror

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
)

// Cache indexes over mirrors, shared by the importer (which writes them) and
// the clusterset reconciler (which reads them). client-go keeps a set of
// keys per index value, and controller-runtime stores every value twice
// (cluster-wide and namespaced), so an index costs a few hundred bytes per
// object: at 10,000 imports, one index on mirrors costs about 5 MB. The two
// readers therefore share these two, and neither keeps a private copy. The
// Link that owns a mirror is not indexed: a reader of one Link's mirrors
// filters what these return by OwnerOf (at most one mirror per Link), and a
// pass over a whole Link lists by its ownership label.
const (
	// IndexRemote holds "<namespace>/<remote service>" of a Ferry-owned
	// Service that mirrors an export (a mirror or a host mirror), of any
	// Link.
	IndexRemote = "ferry.dev/mirror-remote"
	// IndexSlices holds "<namespace>/<mirror>" of a Ferry-owned
	// EndpointSlice: the mirror Service it belongs to.
	IndexSlices = "ferry.dev/mirror-slices"
)

// RemoteIndexKeys is the IndexRemote value of obj, if it has one.
func RemoteIndexKeys(obj metav1.Object) []string {
	_, owned := OwnerOf(obj)
	remote, named := obj.GetAnnotations()[contract.AnnotationRemoteService]
	if !owned || !named {
		return nil
	}
	return []string{obj.GetNamespace() + "/" + remote}
}

// SliceIndexKeys is the IndexSlices value of obj, if it has one.
func SliceIndexKeys(obj metav1.Object) []string {
	_, owned := OwnerOf(obj)
	svc, named := obj.GetLabels()[discoveryv1.LabelServiceName]
	if !owned || !named {
		return nil
	}
	return []string{obj.GetNamespace() + "/" + svc}
}
