package issuer

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// controllerRules are the least the Issuer needs in its namespace; docs/
// identity.md lists them for internal/install.
var controllerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{contract.IssuerSecret}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "update"}, ResourceNames: []string{contract.GatewayTLSSecret}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// The Issuer works with exactly controllerRules: it reads its two Secrets
// by name only, creates the gateway Secret, updates it, and records Events.
func TestRunsWithLeastPrivilege(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "issuer")
	const user = "test-controller"
	kube := c.Impersonate(t, ns, user, controllerRules)
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", contract.IssuerSecret).String()}
	testkit.Eventually(t, "binding in effect", func() bool {
		_, err := kube.CoreV1().Secrets(ns).List(ctx, byName)
		return err == nil
	})
	if _, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("unrestricted list: %v, want forbidden", err)
	}

	mesh := identitytest.NewMesh(t, "", "east")
	c.PutSecret(t, ns, contract.IssuerSecret, issuerData(t, mesh.Cluster(t, "east")))
	r := start(t, kube, Options{Namespace: ns})
	testkit.Eventually(t, "gateway Secret", func() bool { return getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret) != nil })
	testkit.Eventually(t, "ready", func() bool { return r.Ready() == nil })
	waitEvent(t, ctx, c.Kube, ns, contract.GatewayTLSSecret, EventIssued)

	// An update: the condition annotation, removed by hand, is restored.
	s := getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret)
	delete(s.Annotations, AnnotationCondition)
	if _, err := c.Kube.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "condition restored", func() bool {
		_, ok := readCondition(getSecret(t, ctx, c.Kube, ns, contract.GatewayTLSSecret))
		return ok
	})
}
