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

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// impersonate returns a client acting as user, bound in ns to a Role with
// rules, once the authorizer has seen the binding.
func impersonate(t *testing.T, c *testenv.Cluster, ns, user string, rules []rbacv1.PolicyRule,
	probe func(kubernetes.Interface) error) kubernetes.Interface {
	t.Helper()
	kube := c.Impersonate(t, ns, user, rules)
	// The RBAC authorizer learns of new bindings through its own informers.
	testkit.Eventually(t, "binding in effect", func() bool { return probe(kube) == nil })
	return kube
}

// The gateway needs only get/list/watch on its one Secret, by name: the
// field selector is what makes list and watch authorizable by name.
func TestLoaderNeedsOnlyItsOwnSecret(t *testing.T) {
	ctx := t.Context()
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, east.Leaf(t, east.GatewayID()), mesh.Bundle))

	rules := []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"},
		Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{contract.GatewayTLSSecret},
	}}
	byName := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", contract.GatewayTLSSecret).String()}
	kube := impersonate(t, c, ns, "test-gateway", rules, func(k kubernetes.Interface) error {
		_, err := k.CoreV1().Secrets(ns).List(ctx, byName)
		return err
	})
	if _, err := kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list without the field selector: %v, want forbidden", err)
	}
	l, _ := startLoader(t, kube, Options{Namespace: ns, Expect: east.GatewayID()})
	testkit.Eventually(t, "ready", func() bool { return l.Ready() == nil })

	// The watch (not just the list) is allowed: a rotation arrives.
	next := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, next, mesh.Bundle))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for serialOf(l.Source()).Cmp(next.Leaf.SerialNumber) != 0 {
		if wctx.Err() != nil {
			t.Fatal("rotation not seen through the restricted watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
