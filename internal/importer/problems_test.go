package importer_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestMissingNamespace: an export whose namespace does not exist is
// reported in status and imported as soon as the namespace is created.
func TestMissingNamespace(t *testing.T) {
	feed := newFakeFeed(export("arrives-later", "api", 80))
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("missing-ns", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "missing-ns") })

	testkit.Eventually(t, "missing namespace reported", func() bool {
		l := getLink(t, "missing-ns")
		c := condition(l, ferryv1.LinkSynced)
		return c.Status == metav1.ConditionFalse && c.Reason == "NamespaceMissing" &&
			strings.Contains(l.Status.Message, "arrives-later") && strings.Contains(l.Status.Message, "create them")
	})
	if getService(t, "arrives-later", "api-east") != nil {
		t.Fatal("mirror exists before its namespace")
	}
	if err := west.EnsureNamespace(ctxT(t), "arrives-later"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "imported once the namespace exists", func() bool { return getService(t, "arrives-later", "api-east") != nil })
	testkit.Eventually(t, "status clears", func() bool {
		l := getLink(t, "missing-ns")
		return condition(l, ferryv1.LinkSynced).Status == metav1.ConditionTrue && l.Status.Message == "" && l.Status.ImportedServices == 1
	})
}

// TestLongNames: a mirror name that would exceed 63 characters is
// truncated with a hash, deterministically.
func TestLongNames(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "long"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a-very-long-service-name-", 2) + "that-goes-on" // 62 characters
	feed := newFakeFeed(export("long", long, 80), export("long", long+"x", 80))
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("long-names", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "long-names") })

	for _, svc := range []string{long, long + "x"} {
		want := contract.MirrorName(svc, "east")
		if len(want) > validation.DNS1035LabelMaxLength || want != contract.MirrorName(svc, "east") {
			t.Fatalf("MirrorName(%q) = %q", svc, want)
		}
		testkit.Eventually(t, "mirror "+want, func() bool {
			s := getService(t, "long", want)
			return s != nil && s.Annotations[contract.AnnotationRemoteService] == svc && getSlice(t, "long", want) != nil
		})
	}
	if contract.MirrorName(long, "east") == contract.MirrorName(long+"x", "east") {
		t.Fatal("two exports share a mirror name")
	}
}

// TestForeignServiceUntouched: a Service that Ferry does not own, with the
// mirror's name, is never changed; the clash is reported in status and as
// an Event; the import proceeds once the foreign Service is gone.
func TestForeignServiceUntouched(t *testing.T) {
	ctx := ctxT(t)
	if err := west.EnsureNamespace(ctx, "clash"); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clash", Name: "taken-east", Labels: map[string]string{"owner": "someone-else"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"},
			Ports: []corev1.ServicePort{{Port: 9999, TargetPort: intstr.FromInt32(9999)}}},
	}
	if err := west.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed(export("clash", "taken", 80), export("clash", "free", 80))
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("clashing", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "clashing") })

	testkit.Eventually(t, "clash reported", func() bool {
		l := getLink(t, "clashing")
		c := condition(l, ferryv1.LinkSynced)
		return c.Reason == "NameClash" && strings.Contains(l.Status.Message, "Service clash/taken-east") && l.Status.ImportedServices == 1
	})
	testkit.Eventually(t, "clash event", func() bool {
		var evs eventsv1.EventList
		if err := west.Client.List(ctx, &evs, client.InNamespace(contract.SystemNamespace)); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == "clashing" && e.Reason == "NameClash" && strings.Contains(e.Note, "clash/taken-east") {
				return true
			}
		}
		return false
	})
	got := getService(t, "clash", "taken-east")
	if got.ResourceVersion != foreign.ResourceVersion || got.Labels[contract.LabelLink] != "" || got.Spec.Ports[0].Port != 9999 {
		t.Fatalf("foreign Service was changed: %+v", got)
	}
	if getService(t, "clash", "free-east") == nil {
		t.Fatal("the other export must still be imported")
	}

	if err := west.Client.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "imported once the name is free", func() bool {
		s := getService(t, "clash", "taken-east")
		return s != nil && s.Labels[contract.LabelLink] == "clashing"
	})
	testkit.Eventually(t, "clash cleared", func() bool {
		return condition(getLink(t, "clashing"), ferryv1.LinkSynced).Status == metav1.ConditionTrue
	})
}
