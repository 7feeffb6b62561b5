package mirror

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"ferry.dev/ferry/internal/contract"
)

func TestAllocate(t *testing.T) {
	a := PortKey{"ns", "a", 80}
	b := PortKey{"ns", "b", 80}
	c := PortKey{"ns", "c", 80}
	r := contract.Range{Min: 100 + 10000, Max: 103 + 10000}
	p := func(n int32) int32 { return 10000 + n }
	cases := []struct {
		name      string
		taken     map[int32]PortKey
		current   map[PortKey]int32
		want      []PortKey
		got       map[PortKey]int32
		exhausted []PortKey
	}{
		{name: "fresh, lowest first in key order", want: []PortKey{c, a, b},
			got: map[PortKey]int32{a: p(100), b: p(101), c: p(102)}},
		{name: "current ports are kept", current: map[PortKey]int32{a: p(103), b: p(100)}, want: []PortKey{a, b, c},
			got: map[PortKey]int32{a: p(103), b: p(100), c: p(101)}},
		{name: "ports held by other links are skipped", taken: map[int32]PortKey{p(100): {"x", "y", 1}, p(102): {"x", "z", 1}},
			want: []PortKey{a, b}, got: map[PortKey]int32{a: p(101), b: p(103)}},
		{name: "collision: the lesser key keeps the port", current: map[PortKey]int32{b: p(100)},
			taken: map[int32]PortKey{p(100): a}, want: []PortKey{b}, got: map[PortKey]int32{b: p(101)}},
		{name: "collision: a greater holder yields", current: map[PortKey]int32{a: p(100)},
			taken: map[int32]PortKey{p(100): b}, want: []PortKey{a}, got: map[PortKey]int32{a: p(100)}},
		{name: "duplicate current ports are split", current: map[PortKey]int32{a: p(100), b: p(100)},
			want: []PortKey{a, b}, got: map[PortKey]int32{a: p(100), b: p(101)}},
		{name: "out-of-range current port moves in (range changed)", current: map[PortKey]int32{a: 5000},
			want: []PortKey{a}, got: map[PortKey]int32{a: p(100)}},
		{name: "exhausted", taken: map[int32]PortKey{p(100): {"x", "y", 1}, p(101): {"x", "y", 2}, p(102): {"x", "y", 3}},
			want: []PortKey{a, b}, got: map[PortKey]int32{a: p(103)}, exhausted: []PortKey{b}},
		{name: "unwanted keys free their ports", current: map[PortKey]int32{a: p(100), b: p(101)},
			want: []PortKey{b}, got: map[PortKey]int32{b: p(101)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ex := Allocate(r, TakenMap(tc.taken), tc.current, tc.want)
			if !maps.Equal(got, tc.got) || !slices.Equal(ex, tc.exhausted) {
				t.Errorf("got %v exhausted %v\nwant %v exhausted %v", got, ex, tc.got, tc.exhausted)
			}
			seen := map[int32]bool{}
			for _, port := range got {
				if seen[port] || !r.Contains(port) {
					t.Errorf("port %d assigned twice or out of range", port)
				}
				if _, held := tc.taken[port]; held && tc.name != "collision: a greater holder yields" {
					t.Errorf("port %d is held by another link", port)
				}
				seen[port] = true
			}
		})
	}
}

func BenchmarkAllocate10k(b *testing.B) {
	want := make([]PortKey, 10000)
	for i := range want {
		want[i] = PortKey{"ns", "svc" + itoa(int32(i)), 80}
	}
	r := contract.Range{Min: 20000, Max: 40000}
	cur, _ := Allocate(r, nil, nil, want)
	b.ResetTimer()
	for b.Loop() {
		Allocate(r, nil, cur, want)
	}
}

// A tenant forges a mirror of this Link in its own namespace, with
// targetPorts over the start of the range and a finalizer that keeps it
// Terminating after the controller deletes it. A mirror created later, in
// any namespace, must not get one of those ports: the gateway would have
// sent its clients to the forged target (issue 11, finding 1).
func TestForgedMirrorPortsAreNotHandedOut(t *testing.T) {
	forged := applied(Desired(input(export("tenant", "bait", 80, 81, 82, 83)))).Services[0]
	now := metav1.Now()
	forged.DeletionTimestamp = &now
	forged.Finalizers = []string{"tenant.example/hold"}
	in := input(export("payments", "api", 443))
	in.Owned = Objects{Services: []*corev1.Service{forged}}
	st := Desired(in)
	got := st.Ports[PortKey{"payments", "api-east", 443}]
	for _, p := range forged.Spec.Ports {
		if got == p.TargetPort.IntVal {
			t.Fatalf("payments/api got egress port %d, which the forged tenant/bait-east still holds", got)
		}
	}
	if got != 10004 {
		t.Errorf("payments/api got %d, want the first port after the forged ones (10004)", got)
	}
}
