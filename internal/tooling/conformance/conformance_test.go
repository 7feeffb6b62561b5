package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

var (
	sb         *sandbox.Sandbox
	kubeconfig string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		// Each test then reports, loudly, that it needs root.
		os.Exit(m.Run())
	}
	// The context serves the API server forwarders until the end.
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	sb, kubeconfig, err = Start(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "conformance: "+f+"\n", a...) })
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "conformance: sandbox setup failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	sb.Stop()
	os.Exit(code)
}

// notRun are the specs the filters leave out, each for a reason
// docs/mcs-conformance.md gives; any other spec must run and pass.
var notRun = map[string]string{
	"A DNS lookup of the <service>.<ns>.svc.clusterset.local domain for a ClusterIP service should resolve to the clusterset IP": "exec",
	"A DNS SRV query of the <service>.<ns>.svc.clusterset.local domain for a ClusterIP service should return valid SRV records":  "exec",
	"DNS lookups of the <service>.<ns>.svc.cluster.local domain for a ClusterIP service should only resolve local services":      "exec",
	"A DNS query of the <service>.<ns>.svc.clusterset.local domain for a headless service should return the ready endpoint":      "exec",
	"A DNS query of the <hostname>.<clusterid>.<service>.<ns>.svc.clusterset.local domain for a headless StatefulSet service":    "exec",
	"A DNS SRV query of the <service>.<ns>.svc.clusterset.local domain for a headless service should return valid SRV records":   "exec",
	"Connectivity to a service that is not exported should be inaccessible":                                                      "exec",
	"Connectivity to an exported ClusterIP service should be accessible through DNS":                                             "exec",
	"Connectivity to a ClusterIP service existing in two clusters but exported from one":                                         "exec",
	"Connectivity to exported services with same port name but different port numbers":                                           "exec",
	"Connectivity to exported services with different port name on each cluster":                                                 "exec",
	"Exporting a service should create an MCS EndpointSlice in the service's namespace in each cluster":                          "no MCS slices for ClusterSetIP",
}

func notRunReason(spec string) (string, bool) {
	for prefix, why := range notRun {
		if strings.HasPrefix(spec, prefix) {
			return why, true
		}
	}
	return "", false
}

// The upstream suite, every spec that applies to a gateway-based
// implementation without a kubelet, passes against Ferry.
func TestUpstreamSuite(t *testing.T) {
	netns.RequireRoot(t)
	suite, err := EnsureSuite()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "suite.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rep, err := RunSuite(t.Context(), suite, kubeconfig, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, r := range rep.Results {
		why, skip := notRunReason(r.Name)
		switch {
		case r.State == "passed" && !skip:
			passed++
		case r.State == "skipped" && skip:
		case skip:
			t.Errorf("%s: %s, but the filters should leave it out (%s)", r.Name, r.State, why)
		default:
			t.Errorf("%s: %s\n%s", r.Name, r.State, r.Failure)
		}
	}
	if t.Failed() {
		tail, _ := os.ReadFile(log.Name())
		t.Logf("suite log (end):\n%s", lastLines(string(tail), 80))
	}
	if want := len(rep.Results) - len(notRun); passed != want {
		t.Errorf("%d specs passed, want %d: the suite has %d and %d are left out", passed, want, len(rep.Results), len(notRun))
	}
	t.Logf("MCS conformance: %d of %d specs passed, %d not run (exec into pods, or MCS slices for ClusterSetIP)", passed, len(rep.Results), len(rep.Results)-passed)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// svc is a selectorless Service with the given ports.
func svc(namespace, name string, headless bool, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return s
}

func tcp(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

// namespace creates ns in every cluster: the MCS API's namespace sameness,
// which the importer requires before it mirrors anything there.
func namespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	for _, c := range sb.Clusters {
		if err := c.API.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
}

// exportIn creates the Service and its ServiceExport in c, and returns the
// export's creation time.
func exportIn(ctx context.Context, t *testing.T, c *sandbox.Cluster, s *corev1.Service) time.Time {
	t.Helper()
	if err := c.API.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}
	if err := c.API.Client.Create(ctx, se); err != nil {
		t.Fatal(err)
	}
	return se.CreationTimestamp.Time
}

// exportEastThenWest exports older in east and, once west's ServiceImport
// shows it (seen), newer in west, a clock second later: east's export is
// then the oldest by its time, not by the tie-break on cluster names.
func exportEastThenWest(ctx context.Context, t *testing.T, older, newer *corev1.Service, seen func(*mcsv1beta1.ServiceImport) bool) (east, west *sandbox.Cluster) {
	t.Helper()
	namespace(ctx, t, older.Namespace)
	east, west = sb.Cluster("east"), sb.Cluster("west")
	created := exportIn(ctx, t, east, older)
	waitImport(ctx, t, west, older.Namespace, older.Name, "east's export", seen)
	afterSecondOf(ctx, t, created)
	exportIn(ctx, t, west, newer)
	return east, west
}

// afterSecondOf waits until the clock is past the second of t: creation
// times have seconds granularity, and the oldest export must be told apart
// by its time, not by the tie-break on cluster names.
func afterSecondOf(ctx context.Context, t *testing.T, at time.Time) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return time.Now().Truncate(time.Second).After(at), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitImport waits until c's ServiceImport namespace/name satisfies ok.
func waitImport(ctx context.Context, t *testing.T, c *sandbox.Cluster, namespace, name, what string, ok func(*mcsv1beta1.ServiceImport) bool) *mcsv1beta1.ServiceImport {
	t.Helper()
	var si mcsv1beta1.ServiceImport
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.API.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &si); err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%+v", si.Spec)
		return ok(&si), nil
	})
	if err != nil {
		t.Fatalf("%s: ServiceImport %s/%s in %s: %v (last: %s)", what, namespace, name, c.Name, err, last)
	}
	return &si
}

// waitConflict waits until c's ServiceExport namespace/name has Conflict
// with the given status, and returns the condition.
func waitConflict(ctx context.Context, t *testing.T, c *sandbox.Cluster, namespace, name string, status metav1.ConditionStatus) metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var se mcsv1beta1.ServiceExport
		if err := c.API.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &se); err != nil {
			return false, nil
		}
		cond = meta.FindStatusCondition(se.Status.Conditions, string(mcsv1beta1.ServiceExportConditionConflict))
		return cond != nil && cond.Status == status, nil
	})
	if err != nil {
		t.Fatalf("ServiceExport %s/%s in %s: Conflict not %s: %+v", namespace, name, c.Name, status, cond)
	}
	return *cond
}

func portSet(si *mcsv1beta1.ServiceImport) []string {
	var out []string
	for _, p := range si.Spec.Ports {
		out = append(out, fmt.Sprintf("%s/%d", p.Name, p.Port))
	}
	slices.Sort(out)
	return out
}

// Two clusters export foo with different port sets: every cluster's
// ServiceImport has the union, the newer export carries Conflict naming
// the winner, and when the newer export goes the conflict clears and its
// port leaves the import.
func TestPortUnionAndConflictNamingTheWinner(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const ns = "union"
	east, west := exportEastThenWest(ctx, t, svc(ns, "foo", false, tcp("http", 80)), svc(ns, "foo", false, tcp("http", 80), tcp("metrics", 9090)),
		func(si *mcsv1beta1.ServiceImport) bool { return len(si.Spec.Ports) == 1 })

	union := []string{"http/80", "metrics/9090"}
	for _, c := range []*sandbox.Cluster{east, west} {
		waitImport(ctx, t, c, ns, "foo", "the union", func(si *mcsv1beta1.ServiceImport) bool {
			return slices.Equal(portSet(si), union) && len(si.Status.Clusters) == 2
		})
	}
	newer := waitConflict(ctx, t, west, ns, "foo", metav1.ConditionTrue)
	if newer.Reason != string(mcsv1beta1.ServiceExportReasonPortConflict) || !strings.Contains(newer.Message, "in cluster east") {
		t.Errorf("west's Conflict: %s: %q; want %s naming east, the oldest", newer.Reason, newer.Message, mcsv1beta1.ServiceExportReasonPortConflict)
	}
	older := waitConflict(ctx, t, east, ns, "foo", metav1.ConditionTrue)
	if !strings.Contains(older.Message, "wins") || !strings.Contains(older.Message, "west") {
		t.Errorf("east's Conflict: %q; want it to say it wins and name west", older.Message)
	}

	if err := west.API.Client.Delete(ctx, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foo"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*sandbox.Cluster{east, west} {
		waitImport(ctx, t, c, ns, "foo", "east's ports alone", func(si *mcsv1beta1.ServiceImport) bool {
			return slices.Equal(portSet(si), []string{"http/80"}) && len(si.Status.Clusters) == 1
		})
	}
	waitConflict(ctx, t, east, ns, "foo", metav1.ConditionFalse)
}

// A headless export in east and a ClusterSetIP export of the same name in
// west, later: the oldest, headless, wins in both clusters (a Headless
// ServiceImport with no IP and no clusterset Service), and west's export
// carries the type conflict.
func TestHeadlessnessOldestWinsEverywhere(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const ns = "headlessness"
	east, west := exportEastThenWest(ctx, t, svc(ns, "db", true, tcp("pg", 5432)), svc(ns, "db", false, tcp("pg", 5432)),
		func(si *mcsv1beta1.ServiceImport) bool { return si.Spec.Type == mcsv1beta1.Headless })

	for _, c := range []*sandbox.Cluster{east, west} {
		si := waitImport(ctx, t, c, ns, "db", "both exports", func(si *mcsv1beta1.ServiceImport) bool { return len(si.Status.Clusters) == 2 })
		if si.Spec.Type != mcsv1beta1.Headless || len(si.Spec.IPs) != 0 {
			t.Errorf("%s: ServiceImport type %s, IPs %v; want Headless with none, as east's, the oldest", c.Name, si.Spec.Type, si.Spec.IPs)
		}
		var s corev1.Service
		err := c.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.ClustersetName("db")}, &s)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: clusterset Service %s: %v; want none for a headless import", c.Name, contract.ClustersetName("db"), err)
		}
	}
	cond := waitConflict(ctx, t, west, ns, "db", metav1.ConditionTrue)
	if !strings.Contains(cond.Reason, string(mcsv1beta1.ServiceExportReasonTypeConflict)) || !strings.Contains(cond.Message, "in cluster east") {
		t.Errorf("west's Conflict: %s: %q; want %s naming east", cond.Reason, cond.Message, mcsv1beta1.ServiceExportReasonTypeConflict)
	}
}
