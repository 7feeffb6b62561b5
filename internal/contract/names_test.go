package contract

import (
	"math/rand/v2"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestMirrorName(t *testing.T) {
	long := strings.Repeat("a", 60)
	cases := []struct {
		svc, cluster, want string
	}{
		{"foo", "east", "foo-east"},
		{strings.Repeat("s", 58), "east", strings.Repeat("s", 58) + "-east"}, // exactly 63
		{long, "east", MirrorName(long, "east")},
	}
	for _, tc := range cases {
		if got := MirrorName(tc.svc, tc.cluster); got != tc.want {
			t.Errorf("MirrorName(%q, %q) = %q, want %q", tc.svc, tc.cluster, got, tc.want)
		}
	}
	got := MirrorName(long, "east")
	if len(got) != 63 || !strings.HasPrefix(got, strings.Repeat("a", 52)+"-") {
		t.Errorf("truncated name %q: want 52 characters of the name, a dash and a 10-character hash", got)
	}
	// A dash at the cut is trimmed so the label stays valid.
	dashy := strings.Repeat("b", 51) + "-" + strings.Repeat("c", 20)
	if n := MirrorName(dashy, "east"); strings.Contains(n, "--") {
		t.Errorf("MirrorName kept a dangling dash: %q", n)
	}
}

// Property: for random services and clusters, names are valid, at most 63
// characters, deterministic, and distinct pairs never share a truncated name.
func TestMirrorNameProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		b[0] = 'a' + byte(r.IntN(26))
		b[n-1] = 'a' + byte(r.IntN(26))
		return string(b)
	}
	seen := map[string]string{}
	for i := range 200000 {
		svc, cluster := word(1+r.IntN(63)), word(1+r.IntN(63))
		name := MirrorName(svc, cluster)
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			t.Fatalf("MirrorName(%q, %q) = %q is not a DNS-1035 label: %v", svc, cluster, name, errs)
		}
		if name != MirrorName(svc, cluster) {
			t.Fatalf("MirrorName is not deterministic for %q, %q", svc, cluster)
		}
		if len(svc)+1+len(cluster) <= 63 {
			continue
		}
		key := svc + "/" + cluster
		if prev, ok := seen[name]; ok && prev != key {
			t.Fatalf("collision after %d names: %q and %q both map to %q", i, prev, key, name)
		}
		seen[name] = key
	}
	if len(seen) < 10000 {
		t.Fatalf("only %d truncated names exercised; the property test lost its teeth", len(seen))
	}
}

func TestValidateClusterName(t *testing.T) {
	for _, ok := range []string{"east", "us-east-1", "a"} {
		if err := ValidateClusterName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "East", "east.", "-east", strings.Repeat("x", 64), "a_b", "east\x00", "clusterset"} {
		if err := ValidateClusterName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Every label value Ferry writes must be one the API server accepts.
func TestLabelValuesAreValid(t *testing.T) {
	if errs := validation.IsValidLabelValue(ManagedBy); len(errs) > 0 {
		t.Fatalf("ManagedBy %q: %v", ManagedBy, errs)
	}
	for _, k := range []string{LabelLink, LabelSourceCluster, LabelClusterset, AnnotationClusters} {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			t.Errorf("label key %q: %v", k, errs)
		}
	}
}

func TestClustersetName(t *testing.T) {
	if got := ClustersetName("web"); got != "web-clusterset" {
		t.Errorf("ClustersetName(web) = %q", got)
	}
	long := strings.Repeat("s", 60)
	if got := ClustersetName(long); got != MirrorName(long, "clusterset") || len(got) > 63 {
		t.Errorf("ClustersetName(long) = %q", got)
	}
}

func TestHostMirrorName(t *testing.T) {
	for _, tc := range []struct{ svc, cluster, host, want string }{
		{"web", "east", "web-1", "web-east-web-1"},
		// A hostname may start with a digit; the name still starts with the
		// service's letter.
		{"db", "east", "0", "db-east-0"},
	} {
		if got := HostMirrorName(tc.svc, tc.cluster, tc.host); got != tc.want {
			t.Errorf("HostMirrorName(%q, %q, %q) = %q, want %q", tc.svc, tc.cluster, tc.host, got, tc.want)
		}
	}
	long := strings.Repeat("h", 63)
	a, b := HostMirrorName("web", "east", long), HostMirrorName("web", "east", long[:62]+"x")
	for _, n := range []string{a, b} {
		if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
			t.Errorf("%q is not a DNS-1035 label: %v", n, errs)
		}
	}
	if a == b {
		t.Errorf("two long hostnames share the name %q", a)
	}
	// A host mirror never takes the name of the mirror it belongs to.
	if HostMirrorName("web", "east", "web-1") == MirrorName("web", "east") {
		t.Error("host mirror and mirror share a name")
	}
}

func TestPodSliceName(t *testing.T) {
	if got := PodSliceName("web", "east", false); got != "web.east" {
		t.Errorf("IPv4: %q", got)
	}
	if got := PodSliceName("web", "east", true); got != "web.east.ipv6" {
		t.Errorf("IPv6: %q", got)
	}
	// The longest service and cluster names still make a valid object name.
	n := PodSliceName(strings.Repeat("s", 63), strings.Repeat("c", 63), true)
	if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
		t.Errorf("%q: %v", n, errs)
	}
}
