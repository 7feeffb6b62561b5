package importer_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestClashWakesOnOtherLinksDelete: a Link blocked by another Link's mirror
// imports as soon as that Link is deleted and its mirrors removed, even
// though the feed is quiet and the probe steady (nothing else re-queues
// it). The deletes are Ferry's own writes, whose watch echoes are
// suppressed: the blocked Link must be woken regardless.
func TestClashWakesOnOtherLinksDelete(t *testing.T) {
	if err := west.EnsureNamespace(ctxT(t), "relink"); err != nil {
		t.Fatal(err)
	}
	feedA := newFakeFeed(export("relink", "foo", 80))
	feedB := newFakeFeed(export("relink", "foo", 80))
	startImporter(t, map[string]*fakeFeed{"east-a:4143": feedA, "east-b:4143": feedB}, &fakeProber{})

	createLink(t, newLink("relink-a", "east-a:4143"))
	t.Cleanup(func() { deleteLink(t, "relink-a") })
	testkit.Eventually(t, "mirror owned by relink-a", func() bool {
		s, sl := getService(t, "relink", "foo-east"), getSlice(t, "relink", "foo-east")
		return s != nil && s.Labels[contract.LabelLink] == "relink-a" && sl != nil && sl.Labels[contract.LabelLink] == "relink-a"
	})

	createLink(t, newLink("relink-b", "east-b:4143"))
	t.Cleanup(func() { deleteLink(t, "relink-b") })
	testkit.Eventually(t, "relink-b reports the clash", func() bool {
		l := getLink(t, "relink-b")
		c := condition(l, ferryv1.LinkSynced)
		return c.Status == metav1.ConditionFalse && c.Reason == "NameClash" && strings.Contains(l.Status.Message, "relink/foo-east")
	})

	deleteLink(t, "relink-a")
	testkit.EventuallyWithin(t, 10*time.Second, "relink-b imports once relink-a is gone", func() bool {
		s, sl := getService(t, "relink", "foo-east"), getSlice(t, "relink", "foo-east")
		return s != nil && s.Labels[contract.LabelLink] == "relink-b" && sl != nil && sl.Labels[contract.LabelLink] == "relink-b"
	})
	testkit.EventuallyWithin(t, 10*time.Second, "relink-b synced", func() bool {
		l := getLink(t, "relink-b")
		return condition(l, ferryv1.LinkSynced).Status == metav1.ConditionTrue && l.Status.ImportedServices == 1
	})
}
