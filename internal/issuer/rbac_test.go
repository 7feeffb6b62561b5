package issuer

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/identity/identitytest"
)

// controllerRules are the least the Issuer needs in its namespace; docs/
// identity.md lists them for internal/install.
var controllerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{DefaultIssuerSecret}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "update"}, ResourceNames: []string{DefaultGatewaySecret}},
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// The Issuer works with exactly controllerRules: it reads its two Secrets
// by name only, creates the gateway Secret, updates it, and records Events.
func TestRunsWithLeastPrivilege(t *testing.T) {
	ctx := testCtx(t)
	c := cluster(t)
	ns := newNamespace(t, ctx, c.Kube)
	const user = "test-controller"
	rbac := c.Kube.RbacV1()
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: controllerRules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.RestConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", DefaultIssuerSecret).String()}
	eventually(t, "binding in effect", func() bool {
		_, err := kube.CoreV1().Secrets(ns).List(ctx, byName)
		return err == nil
	})
	if _, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("unrestricted list: %v, want forbidden", err)
	}

	mesh := identitytest.NewMesh(t, "", "east")
	putSecret(t, ctx, c.Kube, ns, DefaultIssuerSecret, issuerData(t, mesh.Cluster(t, "east")))
	r := start(t, kube, Options{Namespace: ns})
	eventually(t, "gateway Secret", func() bool { return getSecret(t, ctx, c.Kube, ns, DefaultGatewaySecret) != nil })
	eventually(t, "ready", func() bool { return r.Ready() == nil })
	waitEvent(t, ctx, c.Kube, ns, DefaultGatewaySecret, EventIssued)

	// An update: the condition annotation, removed by hand, is restored.
	s := getSecret(t, ctx, c.Kube, ns, DefaultGatewaySecret)
	delete(s.Annotations, AnnotationCondition)
	if _, err := c.Kube.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "condition restored", func() bool {
		_, ok := readCondition(getSecret(t, ctx, c.Kube, ns, DefaultGatewaySecret))
		return ok
	})
}
