package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
)

// cond is a Link condition that changed at the given time.
func cond(typ string, status metav1.ConditionStatus, reason, msg string, at time.Time) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(at)}
}

// healthyStatus is what the importer writes for a working Link.
func healthyStatus(imports int32, synced time.Time) ferryv1.LinkStatus {
	return ferryv1.LinkStatus{
		ObservedGeneration: 1,
		Conditions: []metav1.Condition{
			cond(ferryv1.LinkConnected, metav1.ConditionTrue, "Connected", "receiving exports", synced),
			cond(ferryv1.LinkSynced, metav1.ConditionTrue, "Synced", "exports mirrored", synced),
			cond(ferryv1.LinkGatewayHealthy, metav1.ConditionTrue, "ProbeSucceeded", "the remote gateway answers probes", synced),
		},
		LastSyncTime:     &metav1.Time{Time: synced},
		ImportedServices: imports,
	}
}

// createLink creates a Link to cluster in c and then sets its status, as
// the controller would; it is deleted when the test ends.
func createLink(t *testing.T, c client.Client, cluster string, status *ferryv1.LinkStatus, addrs ...string) *ferryv1.Link {
	t.Helper()
	ensureNamespace(t, c, contract.SystemNamespace)
	if len(addrs) == 0 {
		addrs = []string{"198.18.2.1:4143"}
	}
	l := &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: contract.SystemNamespace},
		Spec: ferryv1.LinkSpec{ClusterName: cluster, GatewayAddresses: addrs,
			GatewayIdentity: contract.GatewayID(contract.DefaultMeshDomain, cluster).String()},
	}
	create(t, c, l)
	if status != nil {
		l.Status = *status
		if err := c.Status().Update(context.Background(), l); err != nil {
			t.Fatalf("status of link %s: %v", cluster, err)
		}
	}
	return l
}

// westLinks gives west three Links: healthy, down for days, and never seen
// by a controller.
func westLinks(t *testing.T) {
	t.Helper()
	west := clusterClient(t, importer)
	now := time.Now()
	east := healthyStatus(3, now.Add(-5*time.Hour))
	east.LastSyncVersion = 42
	createLink(t, west, "east", &east, "198.18.0.10:4143", "198.18.0.12:4143")
	down := now.Add(-72 * time.Hour)
	north := healthyStatus(1, down)
	north.Conditions = []metav1.Condition{
		cond(ferryv1.LinkConnected, metav1.ConditionFalse, "Disconnected", "dial tcp 198.18.2.1:4143: connect: connection refused", down),
		cond(ferryv1.LinkSynced, metav1.ConditionTrue, "Synced", "1 exports mirrored", down),
		cond(ferryv1.LinkGatewayHealthy, metav1.ConditionFalse, "ProbeFailed", "probes fail: connection refused", down),
	}
	north.Message = "cannot reach north's feed at 198.18.2.1:4143 (connection refused); imported mirrors stay. Check spec.gatewayAddresses"
	createLink(t, west, "north", &north)
	createLink(t, west, "south", nil)
}

func ptrTo[T any](v T) *T { return &v }

func TestLinksTable(t *testing.T) {
	shared.Get(t)
	westLinks(t)
	golden(t, "links.txt", mustFerryOn(t, importer, "links"))
}

func TestLinksJSON(t *testing.T) {
	shared.Get(t)
	westLinks(t)
	var rows []linkSummary
	out := mustFerryOn(t, importer, "links", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rows) != 3 || rows[0].Name != "east" || rows[0].ImportedServices != 3 || rows[0].Connected != "True" ||
		rows[0].LastSyncAge != "5h" || rows[0].LastSyncTime == nil || len(rows[0].GatewayAddresses) != 2 {
		t.Errorf("rows: %+v", rows)
	}
	if rows[1].Connected != "False" || !strings.HasPrefix(rows[1].Message, "cannot reach north's feed") || rows[2].Connected != "Unknown" {
		t.Errorf("north and south: %+v", rows[1:])
	}
	if out := mustFerryOn(t, importer, "links", "-o", "yaml"); !strings.Contains(out, "- cluster: east\n") {
		t.Errorf("-o yaml:\n%s", out)
	}
}

func TestLinksNone(t *testing.T) {
	shared.Get(t)
	out, stderr, err := ferryOn(t, checked, "links")
	if err != nil || out != "" || !strings.Contains(stderr, `No Links in context "north". To import from cluster REMOTE: ferry --context REMOTE link`) {
		t.Errorf("no Links: err %v, stdout %q, stderr %q", err, out, stderr)
	}
	if out := mustFerryOn(t, checked, "links", "-o", "json"); out != "[]\n" {
		t.Errorf("no Links, -o json: %q", out)
	}
}

func TestGatewaysTable(t *testing.T) {
	installEast(t)
	westLinks(t)
	golden(t, "gateways-importer.txt", mustFerryOn(t, importer, "gateways"))
	golden(t, "gateways-exporter.txt", mustFerryOn(t, exporter, "gateways"))
}

func TestGatewaysJSON(t *testing.T) {
	installEast(t)
	westLinks(t)
	var r gatewaysReport
	out := mustFerryOn(t, exporter, "gateways", "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	l := r.Local
	if !l.Installed || l.Type != "LoadBalancer" || strings.Join(l.Addresses, ",") != eastGatewayIP+":4143" ||
		!l.Deployment || l.Replicas != 2 || l.ReadyReplicas != 2 || l.ReadyEndpoints != 2 || len(r.Remotes) != 0 {
		t.Errorf("east: %+v", r)
	}
	out = mustFerryOn(t, importer, "gateways", "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Local.Installed || len(r.Remotes) != 3 {
		t.Fatalf("west: %+v", r)
	}
	if n := r.Remotes[1]; n.Cluster != "north" || n.Alive != "False" || n.AliveSince != "3d" || n.Reason != "ProbeFailed" ||
		n.ProbeLatencyP50 != "-" || n.Message != "probes fail: connection refused" {
		t.Errorf("north: %+v", n)
	}
}

// TestNewCommandsKubeErrors: every new command that talks to a cluster
// gives kubeConnect's one-line advice for a wrong context or an unreachable
// server, with no usage dump.
func TestNewCommandsKubeErrors(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, kc, "https://127.0.0.1:1", "down")
	for _, args := range [][]string{
		{"link", "--cluster-name", "east"}, {"unlink", "--cluster-name", "east"}, {"export", "svc/cart"},
		{"unexport", "svc/cart"}, {"links"}, {"gateways"}, {"check"},
	} {
		t.Run(args[0], func(t *testing.T) {
			out, stderr, err := execFerry(t, append([]string{"--kubeconfig", kc, "--context", "nope"}, args...)...)
			oneLine(t, err, `context "nope" is not in `+kc+": use one of down")
			if out != "" || stderr != "" {
				t.Errorf("printed %q / %q", out, stderr)
			}
			if args[0] == "check" {
				return // unreachable is a failed check, tested in TestCheckUnreachable
			}
			_, stderr, err = execFerry(t, append([]string{"--kubeconfig", kc}, args...)...)
			oneLine(t, err, `cannot reach the API server https://127.0.0.1:1 of context "down"`)
			if stderr != "" {
				t.Errorf("stderr %q", stderr)
			}
		})
	}
}
