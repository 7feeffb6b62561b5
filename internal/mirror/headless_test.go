package mirror

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

func headlessExport(hosts ...string) exports.Export {
	e := export("db", "web", 80, 443)
	e.Type = exports.Headless
	e.ReadyEndpoints = int32(len(hosts))
	e.Hostnames = hosts
	return e
}

func TestDesiredHeadlessWithHostnames(t *testing.T) {
	in := input(headlessExport("web-0", "web-1"))
	st := Desired(in)
	if st.Imported != 1 || len(st.Problems) != 0 {
		t.Fatalf("imported %d, problems %v", st.Imported, st.Problems)
	}
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	if want := []string{"web-east", "web-east-web-0", "web-east-web-1"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	mirror, host := st.Services[0], st.Services[2]
	if mirror.Spec.ClusterIP != corev1.ClusterIPNone || mirror.Annotations[contract.AnnotationExportType] != string(exports.Headless) {
		t.Errorf("mirror: clusterIP %q, annotations %v; want a headless mirror", mirror.Spec.ClusterIP, mirror.Annotations)
	}
	if host.Spec.ClusterIP != "" || host.Annotations[contract.AnnotationRemoteHostname] != "web-1" ||
		host.Annotations[contract.AnnotationRemoteService] != "web" || host.Labels[contract.LabelLink] != "east" {
		t.Errorf("host mirror %s: clusterIP %q, labels %v, annotations %v", host.Name, host.Spec.ClusterIP, host.Labels, host.Annotations)
	}
	// Each host mirror holds one egress port per exported port, and the
	// headless mirror none.
	if len(st.Ports) != 4 {
		t.Errorf("ports %v, want 2 hosts × 2 ports", st.Ports)
	}
	for k := range st.Ports {
		if k.Service == "web-east" {
			t.Errorf("the headless mirror holds egress port %v", k)
		}
	}
	if got := host.Spec.Ports[0].TargetPort.IntVal; got != st.Ports[PortKey{"db", "web-east-web-1", 80}] {
		t.Errorf("host mirror targetPort %d, claims %v", got, st.Ports)
	}

	// Before the API server gives the host mirrors their addresses, the
	// pods have no name; once it has, the headless mirror's slice names
	// each at its host mirror's address.
	podSlice := func(st State) *discoveryv1.EndpointSlice {
		for _, s := range st.Slices {
			if s.Name == "web-east" {
				return s
			}
		}
		t.Fatal("no slice web-east")
		return nil
	}
	if eps := podSlice(st).Endpoints; len(eps) != 0 {
		t.Errorf("endpoints before the host mirrors exist: %v", eps)
	}
	in.Owned = applied(st)
	st2 := Desired(in)
	eps := podSlice(st2).Endpoints
	ips := map[string]string{}
	for _, s := range in.Owned.Services {
		ips[s.Name] = s.Spec.ClusterIP
	}
	if len(eps) != 2 || ptr.Deref(eps[1].Hostname, "") != "web-1" || eps[1].Addresses[0] != ips["web-east-web-1"] || !*eps[1].Conditions.Ready {
		t.Fatalf("endpoints %+v, want web-1 at %s", eps, ips["web-east-web-1"])
	}
	if p := podSlice(st2).Ports; len(p) != 2 || *p[0].Port != 80 || *p[1].Port != 443 {
		t.Errorf("pod slice ports %+v, want the exported ports", p)
	}
	// Applied, the state is stable: no write.
	in.Owned = applied(st2)
	for _, s := range in.Owned.Services {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[s.Name], []string{ips[s.Name]}
		if s.Name == "web-east" {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, nil
		}
	}
	if ops := Diff(Desired(in), in.Owned); len(ops) != 0 {
		t.Errorf("writes after applying: %v", ops)
	}
}

func TestDesiredHeadlessScalesAndTurnsClusterIP(t *testing.T) {
	in := input(headlessExport("web-0", "web-1", "web-2"))
	in.Owned = applied(Desired(in))
	// web-2 goes (scaled down, or not ready): its host mirror goes, and
	// its port is released with it.
	in.Exports = []exports.Export{headlessExport("web-0", "web-1")}
	ops := Diff(Desired(in), in.Owned)
	var deleted []string
	for _, op := range ops {
		if op.Verb == "delete" {
			deleted = append(deleted, op.Object.GetName())
		}
	}
	if !slices.Contains(deleted, "web-east-web-2") || slices.Contains(deleted, "web-east") {
		t.Errorf("deleted %v, want web-east-web-2 and not the mirror", deleted)
	}
	// No hostname left: the export is a ClusterIP mirror again, which
	// needs a new Service (a ClusterIP cannot be added to a Service).
	in.Exports = []exports.Export{headlessExport()}
	ops = Diff(Desired(in), in.Owned)
	found := false
	for _, op := range ops {
		if op.Object.GetName() == "web-east" && op.Verb == "delete" {
			found = true
		}
	}
	if !found {
		t.Errorf("ops %v: want the headless mirror deleted to be re-created with a ClusterIP", ops)
	}
}

func TestDesiredHeadlessNameClash(t *testing.T) {
	// The mirror of export "web-east" from cluster "east" is
	// "web-east-east", which is also web's host mirror for hostname "east".
	other := export("db", "web-east", 80)
	st := Desired(input(headlessExport("east"), other))
	if st.Imported != 1 || len(st.Problems) != 1 || st.Problems[0].Reason != NameClash {
		t.Fatalf("imported %d, problems %+v; want one export imported and the other a NameClash", st.Imported, st.Problems)
	}
}

func TestReadHostMirror(t *testing.T) {
	st := Desired(input(headlessExport("web-0")))
	owned := applied(st)
	var got []Mirror
	for _, s := range owned.Services {
		m, problems, ok := Read(s, contract.DefaultEgressRange())
		if !ok || len(problems) > 0 {
			t.Fatalf("%s: ok %v, problems %v", s.Name, ok, problems)
		}
		got = append(got, m)
	}
	if !got[0].Headless || len(got[0].Ports) != 0 {
		t.Errorf("mirror %+v: want headless, with no egress port", got[0])
	}
	if got[1].Hostname != "web-0" || got[1].Export.Name != "web" || len(got[1].Ports) != 2 {
		t.Errorf("host mirror %+v", got[1])
	}
	// A tenant who edits the hostname cannot point the claimed name at
	// another pod: the name no longer matches.
	forged := owned.Services[1].DeepCopy()
	forged.Annotations[contract.AnnotationRemoteHostname] = "web-1"
	if _, problems, ok := Read(forged, contract.DefaultEgressRange()); ok || len(problems) == 0 {
		t.Errorf("a host mirror whose hostname was changed was read: ok %v", ok)
	}
	forged.Annotations[contract.AnnotationRemoteHostname] = "Web.0"
	if _, _, ok := Read(forged, contract.DefaultEgressRange()); ok {
		t.Error("a hostname that is not a DNS label was read")
	}
	// Recover gives back the export with its hostnames.
	rec := Recover(owned)
	if len(rec) != 1 || !slices.Equal(rec[0].Hostnames, []string{"web-0"}) || rec[0].Type != exports.Headless {
		t.Errorf("Recover = %+v", rec)
	}
}
