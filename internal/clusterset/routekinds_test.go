package clusterset

import (
	"log/slog"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Which route kinds the reconciler reads: those the API server serves and
// this controller may list and watch. A kind it may not read is left out
// (a watch it may not make would keep the manager from syncing).
func TestServedRouteKinds(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{RoutesGroupVersion})
	mapper.Add(RoutesGroupVersion.WithKind("TCPRoute"), meta.RESTScopeNamespace)
	mapper.Add(RoutesGroupVersion.WithKind("HTTPRoute"), meta.RESTScopeNamespace)
	for _, tc := range []struct {
		name    string
		mapper  meta.RESTMapper
		allowed map[string]bool // resource -> may list and watch
		want    routeKinds
	}{
		{"served and allowed", mapper, map[string]bool{"tcproutes": true, "httproutes": true}, routeKinds{tcp: true, http: true}},
		{"HTTPRoutes not allowed", mapper, map[string]bool{"tcproutes": true}, routeKinds{tcp: true}},
		{"not served", meta.NewDefaultRESTMapper(nil), map[string]bool{"tcproutes": true, "httproutes": true}, routeKinds{}},
	} {
		cs := fake.NewClientset()
		cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
			r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
			r.Status.Allowed = tc.allowed[r.Spec.ResourceAttributes.Resource] && r.Spec.ResourceAttributes.Group == gwv1.GroupName
			return true, r, nil
		})
		got, err := servedRouteKinds(tc.mapper, cs.AuthorizationV1().SelfSubjectAccessReviews(), slog.New(slog.DiscardHandler))
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}
