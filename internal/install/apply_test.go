package install

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testenv"
)

const fieldOwner = client.FieldOwner("ferry-install-test")

func toUnstructured(t *testing.T, objs []client.Object) []*unstructured.Unstructured {
	t.Helper()
	maps, err := Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, len(maps))
	for i, m := range maps {
		out[i] = &unstructured.Unstructured{Object: m}
	}
	return out
}

func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured, opts ...client.ApplyOption) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), append(opts, fieldOwner, client.ForceOwnership)...)
}

var (
	installMu   sync.Mutex
	installDone bool
)

// installed applies the default install for real, once, for the tests that
// need Ferry's objects in the cluster (RBAC, Pod Security).
func installed(t *testing.T) *testenv.Cluster {
	t.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	if !installDone {
		testServerSideApply(t)
	}
	return shared.Cluster(t)
}

// TestServerSideApply is `kubectl apply --server-side` of every golden case:
// first with dry run (cluster-scoped objects, then namespaced ones once the
// Namespace exists, because admission refuses objects in a missing
// namespace even in dry run), then for real, then once more, which must
// change nothing.
func TestServerSideApply(t *testing.T) {
	installMu.Lock()
	defer installMu.Unlock()
	testServerSideApply(t)
}

func testServerSideApply(t *testing.T) {
	t.Helper()
	c := shared.Cluster(t)
	ctx := t.Context()
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	us := toUnstructured(t, objs)
	var ns *unstructured.Unstructured
	for _, u := range us {
		if u.GetNamespace() == "" {
			if err := apply(ctx, c.Client, u, client.DryRunAll); err != nil {
				t.Fatalf("dry-run apply %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
		if u.GetKind() == "Namespace" {
			ns = u
		}
	}
	if err := apply(ctx, c.Client, ns); err != nil {
		t.Fatalf("apply Namespace: %v", err)
	}
	for _, u := range us {
		if u.GetNamespace() != "" {
			if err := apply(ctx, c.Client, u, client.DryRunAll); err != nil {
				t.Fatalf("dry-run apply %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	// Every variant is accepted too (they differ only in namespaced objects).
	for _, gc := range goldenCases(t) {
		for _, u := range toUnstructured(t, renderCase(t, gc)) {
			if err := apply(ctx, c.Client, u, client.DryRunAll); err != nil {
				t.Fatalf("%s: dry-run apply %s %s: %v", gc.name, u.GetKind(), u.GetName(), err)
			}
		}
	}

	versions := map[string]string{}
	for _, u := range us {
		if err := apply(ctx, c.Client, u); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		got := u.DeepCopy()
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Fatalf("get %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		versions[u.GetKind()+"/"+u.GetName()] = got.GetResourceVersion()
	}
	if err := testenv.InstallCRDs(ctx, c.RestConfig, CRDDocuments()...); err != nil {
		t.Fatalf("CRDs not established: %v", err)
	}
	for _, u := range us {
		if u.GetKind() == "CustomResourceDefinition" {
			continue // the API server writes their status, which bumps resourceVersion
		}
		if err := apply(ctx, c.Client, u); err != nil {
			t.Fatalf("re-apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		got := u.DeepCopy()
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
			t.Fatal(err)
		}
		if key := u.GetKind() + "/" + u.GetName(); got.GetResourceVersion() != versions[key] {
			t.Errorf("re-applying %s changed it (resourceVersion %s -> %s): the manifest fights the API server's defaults",
				key, versions[key], got.GetResourceVersion())
		}
	}
	installDone = !t.Failed()
}

// TestPodsPassRestrictedPodSecurity creates (dry run) a Pod from each
// Deployment's template in ferry-system, whose Namespace enforces the
// "restricted" Pod Security Standard; a Pod without hardening must be
// refused, which shows the check is live.
func TestPodsPassRestrictedPodSecurity(t *testing.T) {
	c := installed(t)
	ctx := t.Context()
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deployments(objs) {
		pod := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
		pod.Name, pod.Namespace = d.Name+"-psa", contract.SystemNamespace
		if err := c.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Errorf("pod of %s refused: %v", d.Name, err)
		}
	}
	// Named ServiceAccount: testenv has no controller making "default".
	bad := &corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: contract.GatewayName, Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	bad.Name, bad.Namespace = "unhardened", contract.SystemNamespace
	err = c.Client.Create(ctx, bad, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("an unhardened pod was not refused by Pod Security: %v", err)
	}
}
