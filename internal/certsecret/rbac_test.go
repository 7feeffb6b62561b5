package certsecret

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/testenv"
)

// impersonate returns a client acting as user, bound in ns to a Role with
// rules, once the authorizer has seen the binding.
func impersonate(t *testing.T, ctx context.Context, c *testenv.Cluster, ns, user string, rules []rbacv1.PolicyRule,
	probe func(kubernetes.Interface) error) kubernetes.Interface {
	t.Helper()
	rbac := c.Kube.RbacV1()
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
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
	// The RBAC authorizer learns of new bindings through its own informers.
	eventually(t, "binding in effect", func() bool { return probe(kube) == nil })
	return kube
}

// The gateway needs only get/list/watch on its one Secret, by name: the
// field selector is what makes list and watch authorizable by name.
func TestLoaderNeedsOnlyItsOwnSecret(t *testing.T) {
	ctx := testCtx(t)
	c := cluster(t)
	ns := newNamespace(t, ctx, c.Kube)
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	putSecret(t, ctx, c.Kube, ns, leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle))

	rules := []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"},
		Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{DefaultSecretName},
	}}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", DefaultSecretName).String()}
	kube := impersonate(t, ctx, c, ns, "test-gateway", rules, func(k kubernetes.Interface) error {
		_, err := k.CoreV1().Secrets(ns).List(ctx, byName)
		return err
	})
	if _, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list without the field selector: %v, want forbidden", err)
	}
	l, _ := startLoader(t, kube, Options{Namespace: ns, Expect: east.GatewayID()})
	eventually(t, "ready", func() bool { return l.Ready() == nil })

	// The watch (not just the list) is allowed: a rotation arrives.
	next := east.Leaf(t, east.GatewayID())
	putSecret(t, ctx, c.Kube, ns, leafData(t, next, mesh.Bundle))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for serialOf(l.Source()).Cmp(next.Leaf.SerialNumber) != 0 {
		if wctx.Err() != nil {
			t.Fatal("rotation not seen through the restricted watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
