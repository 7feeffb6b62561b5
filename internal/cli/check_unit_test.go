package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
)

func TestRunChecks(t *testing.T) {
	calls := 0
	checks := []Check{
		{Name: "f", Severity: SeverityFatal, Run: func(context.Context) error {
			if calls++; calls < 2 {
				return errors.New("not yet")
			}
			return nil
		}},
		{Name: "a", Severity: SeverityFatal, Hint: "fix a", Run: func(context.Context) error { return errors.New("a broke") }},
		{Name: "b", Severity: SeverityFatal, Requires: "a", Run: func(context.Context) error { t.Error("b ran"); return nil }},
		{Name: "c", Severity: SeverityWarning, Hint: "generic", Requires: "f", Run: func(context.Context) error {
			return withHint(errors.New("c is odd"), "fix %s", "c")
		}},
		{Name: "d", Severity: SeverityFatal, Run: func(context.Context) error { return skipf("not allowed") }},
		{Name: "e", Severity: SeverityFatal, Requires: "d", Run: func(context.Context) error { return nil }},
	}
	var streamed, retried []string
	// f passes on its second attempt (after 1s); a is retried until the
	// shared deadline; the checks after it still get one attempt each.
	// Each pause before a retry is announced (the terminal's status line).
	rs := runChecks(context.Background(), checks, 2500*time.Millisecond,
		func(c Check, err error) { retried = append(retried, c.Name+": "+err.Error()) },
		func(r CheckResult) { streamed = append(streamed, r.Name) })
	want := []CheckResult{
		{Name: "f", Severity: SeverityFatal, Status: statusPassed, Attempts: 2},
		{Name: "a", Severity: SeverityFatal, Status: statusFailed, Error: "a broke", Hint: "fix a", Attempts: 2},
		{Name: "b", Severity: SeverityFatal, Status: statusSkipped, Error: "needs: a"},
		{Name: "c", Severity: SeverityWarning, Status: statusWarning, Error: "c is odd", Hint: "fix c", Attempts: 1},
		{Name: "d", Severity: SeverityFatal, Status: statusSkipped, Error: "not allowed", Attempts: 1},
		{Name: "e", Severity: SeverityFatal, Status: statusSkipped, Error: "needs: d"},
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("result %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	if strings.Join(streamed, "") != "fabcde" {
		t.Errorf("streamed %v", streamed)
	}
	if strings.Join(retried, "; ") != "f: not yet; a: a broke" {
		t.Errorf("retries announced: %q", retried)
	}
	if got := fatalFailures(rs); strings.Join(got, ",") != "a" {
		t.Errorf("fatal failures %v", got)
	}
}

func TestRunChecksWithoutWaitTriesOnce(t *testing.T) {
	n := 0
	rs := runChecks(context.Background(), []Check{{Name: "x", Severity: SeverityFatal, Run: func(context.Context) error { n++; return errors.New("no") }}}, 0, func(Check, error) {}, func(CheckResult) {})
	if n != 1 || rs[0].Status != statusFailed {
		t.Errorf("%d attempts, %+v", n, rs[0])
	}
}

func TestLinkStatusProblems(t *testing.T) {
	now := time.Now()
	ok := healthyStatus(1, now)
	down := healthyStatus(1, now)
	down.Conditions[0] = cond(ferryv1.LinkConnected, metav1.ConditionFalse, "Disconnected", "refused", now)
	old := healthyStatus(1, now)
	nsMissing := healthyStatus(1, now)
	nsMissing.Conditions[1] = cond(ferryv1.LinkSynced, metav1.ConditionFalse, "NamespaceMissing", "1 exports of east wait for namespaces that do not exist here: shop; create them to import", now)
	full := healthyStatus(1, now)
	full.Conditions[1] = cond(ferryv1.LinkSynced, metav1.ConditionFalse, "PortsExhausted", "1 exports not imported because the egress port range is full", now)
	cases := []struct {
		name       string
		generation int64
		status     ferryv1.LinkStatus
		deleting   bool
		want       string
	}{
		{"healthy", 1, ok, false, ""},
		{"no status", 1, ferryv1.LinkStatus{}, false, "no status: the controller has not processed it"},
		{"disconnected", 1, down, false, "Connected=False (Disconnected)"},
		{"old generation", 2, old, false, "status describes generation 1, the spec is at 2"},
		{"deleting", 1, ferryv1.LinkStatus{}, true, ""},
		// A namespace this cluster does not have is a warning of its own check.
		{"namespace missing", 1, nsMissing, false, ""},
		{"ports exhausted", 1, full, false, "Synced=False (PortsExhausted)"},
		{"missing condition", 1, ferryv1.LinkStatus{Conditions: ok.Conditions[:2]}, false, "GatewayHealthy not reported"},
	}
	for _, c := range cases {
		l := &ferryv1.Link{ObjectMeta: metav1.ObjectMeta{Generation: c.generation}, Status: c.status}
		if c.deleting {
			l.DeletionTimestamp = &metav1.Time{Time: now}
		}
		got := strings.Join(linkStatusProblems(l), ", ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLinkIdentityProblem(t *testing.T) {
	loc := localIdentity{cluster: "west", mesh: "ferry.local"}
	cases := []struct {
		cluster, id, want string
	}{
		{"east", "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway", ""},
		{"east", "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-controller", "is not a gateway"},
		{"east", "spiffe://north.ferry.local/ns/ferry-system/sa/ferry-gateway", `belongs to cluster "north", not "east"`},
		{"east", "spiffe://east.corp.example/ns/ferry-system/sa/ferry-gateway", `is not in mesh "ferry.local"`},
		{"west", "spiffe://west.ferry.local/ns/ferry-system/sa/ferry-gateway", "links this cluster (west) to itself"},
		{"east", "https://east.ferry.local/", "gatewayIdentity"},
	}
	for _, c := range cases {
		l := &ferryv1.Link{Spec: ferryv1.LinkSpec{ClusterName: c.cluster, GatewayIdentity: c.id}}
		got := linkIdentityProblem(l, loc)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.id, got, c.want)
		}
	}
	// Without a known local identity, only the Link's own consistency counts.
	l := &ferryv1.Link{Spec: ferryv1.LinkSpec{ClusterName: "east", GatewayIdentity: "spiffe://east.corp.example/ns/ferry-system/sa/ferry-gateway"}}
	if got := linkIdentityProblem(l, localIdentity{}); got != "" {
		t.Errorf("unknown local mesh: %q", got)
	}
}

func TestEgressPortProblems(t *testing.T) {
	named := mirrorService("b", "named-east", "east")
	named.Spec.Ports = []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}
	cases := []struct {
		name    string
		mirrors []corev1.Service
		want    []string
	}{
		{"distinct, in range", []corev1.Service{*mirrorService("a", "x-east", "east", 11000, 11001), *mirrorService("b", "y-west", "west", 18999)}, nil},
		{"shared across namespaces", []corev1.Service{*mirrorService("a", "x-east", "east", 11000), *mirrorService("b", "y-west", "west", 11000)},
			[]string{"egress port 11000 is used by a/x-east:80 and b/y-west:80"}},
		{"out of range", []corev1.Service{*mirrorService("a", "x-east", "east", 9999)}, []string{"a/x-east:80 uses egress port 9999, outside 11000-18999"}},
		{"named targetPort", []corev1.Service{*named}, []string{`b/named-east:80 has targetPort "http", not an allocated egress port`}},
		{"a headless mirror's ports are no egress ports", []corev1.Service{func() corev1.Service {
			s := *mirrorService("a", "sts-east", "east", 80)
			s.Spec.ClusterIP = corev1.ClusterIPNone
			return s
		}()}, nil},
	}
	for _, c := range cases {
		got := egressPortProblems(c.mirrors, 11000, 18999)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestListedBoundsItsLength(t *testing.T) {
	ps := []string{"a", "b", "c", "d", "e", "f", "g"}
	if got := listed(ps); got != "a; b; c; d; e; and 2 more" {
		t.Errorf("%q", got)
	}
}

func TestRenewalGrace(t *testing.T) {
	if g := renewalGrace(24 * time.Hour); g != 144*time.Minute {
		t.Errorf("24h: %s", g)
	}
	if g := renewalGrace(time.Minute); g != time.Minute {
		t.Errorf("1m: %s", g)
	}
}

func TestForgedMirrorProblems(t *testing.T) {
	links := []ferryv1.Link{{ObjectMeta: metav1.ObjectMeta{Name: "east"}, Spec: ferryv1.LinkSpec{ClusterName: "east"}}}
	real := *mirrorService("shop", "web-east", "east", 11000)
	real.Annotations = map[string]string{contract.AnnotationRemoteService: "web"}
	renamed := *real.DeepCopy()
	renamed.Namespace, renamed.Name = "tenant", "x"
	other := *real.DeepCopy()
	other.Namespace, other.Labels[contract.LabelSourceCluster] = "tenant", "north"
	held := *real.DeepCopy()
	now := metav1.Now()
	held.Namespace, held.DeletionTimestamp, held.Finalizers = "tenant", &now, []string{"tenant.example/hold"}
	orphan := *real.DeepCopy()
	orphan.Labels[contract.LabelLink] = "gone"
	// An exact copy in another namespace: right name, labels and
	// annotation, but no claim.
	copied := *real.DeepCopy()
	copied.Namespace = "copycat"
	// A StatefulSet's import (docs/headless.md): the headless mirror, with
	// no egress port, vouched for by its claimed host mirror; and a
	// headless copy elsewhere, which nothing vouches for.
	headless := *mirrorService("db", "sts-east", "east")
	headless.Annotations = map[string]string{contract.AnnotationRemoteService: "sts", contract.AnnotationExportType: "Headless"}
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	headless.Spec.Ports = []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}
	host := *mirrorService("db", "sts-east-sts-0", "east", 11001)
	host.Annotations = map[string]string{contract.AnnotationRemoteService: "sts", contract.AnnotationRemoteHostname: "sts-0"}
	lone := *headless.DeepCopy()
	lone.Namespace = "copycat"
	table := claims.Table{
		11000: {Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "web-east", Port: 80},
		11001: {Owner: claims.LinkOwner("east"), Namespace: "db", Service: "sts-east-sts-0", Port: 80},
	}
	got := forgedMirrorProblems([]corev1.Service{real, renamed, other, held, orphan, copied, headless, host, lone}, links, table)
	want := []string{
		"copycat/sts-east is headless, and no claimed host mirror of sts stands for one of its pods",
		"copycat/web-east has no port claim for port 80",
		"mirror tenant/x: the mirror of web from east is named web-east",
		`tenant/web-east claims cluster "north", but Link east is to "east"`,
		"tenant/web-east is kept from deletion by finalizers tenant.example/hold",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("problems:\n%q\nwant:\n%q", got, want)
	}
}

// The trust check during each phase of a root rotation, old root A, new B.
func TestTrustProblems(t *testing.T) {
	const a, b, iOld, iNew, leaf, leaf2 = "sha256:aaaa", "sha256:bbbb", "sha256:1111", "sha256:2222", "sha256:l1", "sha256:l2"
	both := []string{a, b}
	gw := func(roots []string, l, issuer string) trustLoaded {
		return trustLoaded{who: "pod gw-1 (gateway certificate)", cert: "gateway", roots: roots, leaf: l, leafIssuer: issuer}
	}
	for _, tc := range []struct {
		name   string
		want   trustWant
		leaf   string
		loaded []trustLoaded
		found  []string // each must appear in the problems, in order; none means no problem
	}{
		{"before: one root, all loaded", trustWant{[]string{a}, iOld, a}, leaf, []trustLoaded{gw([]string{a}, leaf, iOld)}, nil},
		{"phase 1 applied, the gateway not reloaded yet", trustWant{both, iOld, a}, leaf,
			[]trustLoaded{gw([]string{a}, leaf, iOld)}, []string{"pod gw-1 (gateway certificate) trusts [aaaa], not the issuer Secret's [aaaa bbbb]"}},
		{"phase 1 done", trustWant{both, iOld, a}, leaf, []trustLoaded{gw(both, leaf, iOld)}, nil},
		{"phase 2 applied, leaf not reissued yet", trustWant{both, iNew, b}, leaf, []trustLoaded{gw(both, leaf, iOld)},
			[]string{"has a leaf from issuer 1111, not the current 2222"}},
		{"phase 2: the Secret has the new leaf, the gateway serves the old", trustWant{both, iNew, b}, leaf2, []trustLoaded{gw(both, leaf, iNew)},
			[]string{"serves leaf l1, not the Secret's l2"}},
		{"a standby controller with roots only", trustWant{both, iNew, b}, leaf2,
			[]trustLoaded{gw(both, leaf2, iNew), {who: "pod ctl-2 (controller certificate)", cert: "controller", roots: both}}, nil},
		{"phase 3 done", trustWant{[]string{b}, iNew, b}, leaf2, []trustLoaded{gw([]string{b}, leaf2, iNew)}, nil},
		{"the old root dropped before the new issuer", trustWant{[]string{b}, iOld, ""}, leaf, nil,
			[]string{"the issuer 1111 chains to none of the bundle's roots ([bbbb])"}},
	} {
		got := strings.Join(trustProblems(tc.want, tc.leaf, tc.loaded), "; ")
		if len(tc.found) == 0 && got != "" {
			t.Errorf("%s: problems %q, want none", tc.name, got)
		}
		rest := got
		for _, f := range tc.found {
			i := strings.Index(rest, f)
			if i < 0 {
				t.Errorf("%s: %q not in %q", tc.name, f, got)
				break
			}
			rest = rest[i+len(f):]
		}
	}
}
