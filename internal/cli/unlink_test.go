package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
)

// finalizedLink creates a Link carrying the controller's finalizer; the
// test's cleanup removes the finalizer so the Link never outlives the test.
func finalizedLink(t *testing.T, c client.Client, name, cluster string) *ferryv1.Link {
	t.Helper()
	ensureNamespace(t, c, contract.SystemNamespace)
	l := &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: contract.SystemNamespace, Finalizers: []string{ferryv1.Finalizer}},
		Spec: ferryv1.LinkSpec{ClusterName: cluster, GatewayAddresses: []string{"198.18.3.1:4143"},
			GatewayIdentity: contract.GatewayID(contract.DefaultMeshDomain, cluster).String()},
	}
	if err := c.Create(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = removeFinalizer(ctx, c, name)
		_ = c.Delete(ctx, l)
	})
	return l
}

func removeFinalizer(ctx context.Context, c client.Client, name string) error {
	var l ferryv1.Link
	if err := c.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: name}, &l); err != nil {
		return err
	}
	l.Finalizers = nil
	return c.Update(ctx, &l)
}

// ownedBy returns the objects an importer would have written for link:
// two mirrors, a slice and a ServiceImport, all with the ownership labels.
func ownedBy(link, cluster string) []client.Object {
	lbl := func() map[string]string {
		return map[string]string{contract.LabelLink: link, contract.LabelSourceCluster: cluster}
	}
	return []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cart-" + cluster, Labels: lbl()},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-" + cluster, Labels: lbl()},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cart-" + cluster + "-ipv4", Labels: lbl()},
			AddressType: discoveryv1.AddressTypeIPv4},
		&mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cart", Labels: lbl()},
			Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}},
	}
}

// TestUnlinkWait plays the controller: once the Link is being deleted, it
// removes the owned objects one by one, then the finalizer. unlink --wait
// must report each count and return only when the Link is gone.
func TestUnlinkWait(t *testing.T) {
	west := clusterClient(t, importer)
	ctx := context.Background()
	finalizedLink(t, west, "lake", "lake")
	owned := ownedBy("lake", "lake")
	create(t, west, owned...)

	done := make(chan error, 1)
	go func() {
		done <- func() error {
			for {
				var l ferryv1.Link
				if err := west.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: "lake"}, &l); err != nil {
					return err
				}
				if l.DeletionTimestamp != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, o := range owned {
				time.Sleep(time.Second) // longer than the poll, so unlink sees every count
				if err := west.Delete(ctx, o); err != nil {
					return err
				}
			}
			time.Sleep(time.Second)
			return removeFinalizer(ctx, west, "lake")
		}()
	}()
	out, stderr, err := ferryOnTerminal(t, importer, "unlink", "--cluster-name", "lake", "--wait", "--timeout", "30s")
	if err != nil {
		t.Fatalf("unlink --wait: %v\n%q", err, stderr)
	}
	if err := <-done; err != nil {
		t.Fatalf("simulated controller: %v", err)
	}
	if want := "link ferry-system/lake deleted\nlink lake removed, and everything it owned\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	// One status line on the terminal, rewritten as the count falls, and
	// cleared before the result is printed.
	for _, want := range []string{
		"\rwaiting for 4 mirror objects to be removed (2 Services, 1 EndpointSlice, 1 ServiceImport), ",
		"\rwaiting for 3 mirror objects to be removed (1 Service, 1 EndpointSlice, 1 ServiceImport), ",
		"\rwaiting for 1 mirror object to be removed (1 ServiceImport), ",
		"\rwaiting for the controller to remove finalizer ferry.dev/link-cleanup from link lake, ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%q", want, stderr)
		}
	}
	if strings.Contains(stderr, "\n") || !strings.HasSuffix(stderr, "\r"+clearToEOL) {
		t.Errorf("progress is not one line, cleared at the end: %q", stderr)
	}
	var l ferryv1.Link
	if err := west.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: "lake"}, &l); !apierrors.IsNotFound(err) {
		t.Errorf("link still there: %v", err)
	}
}

func TestUnlinkTimeout(t *testing.T) {
	west := clusterClient(t, importer)
	finalizedLink(t, west, "stuck", "stuck")
	start := time.Now()
	_, stderr, err := ferryOn(t, importer, "unlink", "--cluster-name", "stuck", "--wait", "--timeout", "1s")
	if stderr != "" {
		t.Errorf("unlink --wait in a pipe wrote to stderr: %q", stderr) // only the error, which main prints
	}
	oneLine(t, err, "timed out after 1s: link ferry-system/stuck still exists with 0 owned objects (none): is the controller running?")
	oneLine(t, err, `kubectl -n ferry-system patch link stuck --type=merge -p '{"metadata":{"finalizers":null}}'`)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("--timeout 1s took %s", d)
	}
	// Again: the Link is already being deleted, which is said, not an error.
	out, _, _ := ferryOn(t, importer, "unlink", "--cluster-name", "stuck")
	if !strings.Contains(out, "link ferry-system/stuck was already being deleted") {
		t.Errorf("second unlink: %q", out)
	}
}

// TestUnlinkByClusterName: a Link written by hand under another name is
// found by spec.clusterName; without --wait unlink returns at once.
func TestUnlinkByClusterName(t *testing.T) {
	west := clusterClient(t, importer)
	createLink(t, west, "river", nil)
	l := &ferryv1.Link{}
	mustGet(t, west, contract.SystemNamespace, "river", l)
	renamed := &ferryv1.Link{ObjectMeta: metav1.ObjectMeta{Name: "to-delta", Namespace: contract.SystemNamespace}, Spec: l.Spec}
	renamed.Spec.ClusterName = "delta"
	renamed.Spec.GatewayIdentity = contract.GatewayID(contract.DefaultMeshDomain, "delta").String()
	create(t, west, renamed)
	out := mustFerryOn(t, importer, "unlink", "--cluster-name", "delta")
	if !strings.HasPrefix(out, "link ferry-system/to-delta deleted\n") {
		t.Errorf("unlink: %q", out)
	}

	_, stderr, err := ferryOn(t, importer, "unlink", "--cluster-name", "nope")
	oneLine(t, err, `no Link to cluster "nope" in context "west": it links to river; check --cluster-name or --context`)
	if stderr != "" {
		t.Errorf("stderr %q", stderr)
	}
	_, _, err = ferryOn(t, checked, "unlink", "--cluster-name", "river")
	oneLine(t, err, `no Link to cluster "river" in context "north": it has no Links at all; is this the importing cluster? (--context)`)
	_, _, err = ferryOn(t, importer, "unlink")
	oneLine(t, err, "--cluster-name is required")
	_, _, err = ferryOn(t, importer, "unlink", "--cluster-name", "river", "--timeout", "soon")
	oneLine(t, err, `invalid argument "soon" for "--timeout" flag`)
}
