package mirror

import (
	"fmt"
	"slices"
	"testing"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/writer"
)

func opsString(ops []writer.Op) []string {
	var out []string
	for _, op := range ops {
		out = append(out, fmt.Sprintf("%s %s %s/%s %s", op.Verb, op.Object.GetObjectKind().GroupVersionKind().Kind,
			op.Object.GetNamespace(), op.Object.GetName(), op.Reason))
	}
	return out
}

func TestDiff(t *testing.T) {
	base := []exports.Export{export("ns", "a", 80), export("ns", "b", 80)}
	existing := applied(Desired(input(base...)))

	relabel := export("ns", "a", 80)
	relabel.Labels = map[string]string{"v": "2"}
	notReady := export("ns", "a", 80)
	notReady.ReadyEndpoints = 0
	cases := []struct {
		name    string
		in      func() Input
		want    []string
		noWrite bool
	}{
		{name: "nothing changed writes nothing", in: func() Input { return input(base...) }},
		{name: "new export", in: func() Input { return input(append(base, export("ns", "c", 80))...) },
			want: []string{"create Service ns/c-east new", "create EndpointSlice ns/c-east new"}},
		{name: "port change", in: func() Input { return input(export("ns", "a", 8080), base[1]) },
			want: []string{"update Service ns/a-east spec", "update EndpointSlice ns/a-east endpoints"}},
		{name: "label change", in: func() Input { return input(relabel, base[1]) },
			want: []string{"update Service ns/a-east metadata"}},
		{name: "readiness: the count on the Service, the condition on the slice", in: func() Input { return input(notReady, base[1]) },
			want: []string{"update Service ns/a-east metadata", "update EndpointSlice ns/a-east readiness"}},
		{name: "ready count only", in: func() Input { more := export("ns", "a", 80); more.ReadyEndpoints = 5; return input(more, base[1]) },
			want: []string{"update Service ns/a-east metadata"}},
		{name: "gateway pod added", in: func() Input { in := input(base...); in.Gateway = append(in.Gateway, "10.0.0.3"); return in },
			want: []string{"update EndpointSlice ns/a-east endpoints", "update EndpointSlice ns/b-east endpoints"}},
		{name: "unexport", in: func() Input { return input(base[1]) },
			want: []string{"delete EndpointSlice ns/a-east unexport", "delete Service ns/a-east unexport"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in()
			in.Owned = existing
			ops := Diff(Desired(in), existing)
			if got := opsString(ops); !slices.Equal(got, tc.want) {
				t.Errorf("ops\n%v\nwant\n%v", got, tc.want)
			}
			for _, op := range ops {
				if op.Verb == writer.Update && op.Object.GetResourceVersion() != "1" {
					t.Errorf("update of %s lost the resourceVersion that guards it", op.Object.GetName())
				}
			}
		})
	}
	// Updates work on copies: the cached objects are untouched.
	in := input(export("ns", "a", 8080), base[1])
	in.Owned = existing
	Diff(Desired(in), existing)
	if existing.Services[0].Spec.Ports[0].Port != 80 {
		t.Error("Diff modified an owned (cached) object")
	}
}

// TestRecoverRoundTrip: recovering exports from applied mirrors and
// computing the desired state again gives exactly what exists, whatever the
// health, so a restart writes nothing.
func TestRecoverRoundTrip(t *testing.T) {
	a := export("ns", "a", 80, 443)
	a.Labels = map[string]string{"app": "a"}
	a.Annotations = map[string]string{"team": "x"}
	a.Ports[1].AppProtocol = "https"
	b := export("ns", "b", 80)
	b.ReadyEndpoints = 0
	c := export("other", "c", 9000)
	c.SessionAffinity = "ClientIP"
	c.SessionAffinityTimeoutSeconds = 60
	for _, h := range []Health{Healthy, Unhealthy} {
		in := input(a, b, c)
		in.Health = h
		existing := applied(Desired(in))
		again := input(Recover(existing)...)
		again.Health = h
		again.Owned = existing
		if ops := Diff(Desired(again), existing); len(ops) != 0 {
			t.Errorf("health %s: recovered state differs: %v", h, opsString(ops))
		}
	}
	got := Recover(applied(Desired(input(a))))
	if len(got) != 1 || got[0].Name != "a" || got[0].Labels["app"] != "a" || len(got[0].Labels) != 1 || got[0].ReadyEndpoints != 1 {
		t.Errorf("Recover: %+v", got)
	}
}
