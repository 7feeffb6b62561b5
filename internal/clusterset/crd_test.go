package clusterset_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Every ServiceImport field Desired writes survives the installed CRD's
// schema: a field the API server pruned would differ from the desired one
// on every pass, and the reconciler would write it forever.
func TestServiceImportFieldsSurviveTheCRD(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ns := west.TestNamespace(t, "crd")
	want := mcsv1beta1.ServiceImportSpec{
		Type:                  mcsv1beta1.ClusterSetIP,
		IPs:                   []string{"10.96.7.7", "fd00::7"},
		IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
		Ports:                 []mcsv1beta1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, AppProtocol: ptr.To("http")}},
		SessionAffinity:       corev1.ServiceAffinityClientIP,
		SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10)}},
		InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
		TrafficDistribution:   ptr.To(corev1.ServiceTrafficDistributionPreferClose),
	}
	si := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: want}
	if err := west.Client.Create(ctx, si); err != nil {
		t.Fatal(err)
	}
	var got mcsv1beta1.ServiceImport
	if err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &got); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(got.Spec, want) {
		t.Errorf("read back\n %+v\nwant\n %+v", got.Spec, want)
	}
}
