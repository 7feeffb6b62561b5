package gatewayd

import (
	"slices"
	"testing"
	"time"

	"ferry.dev/ferry/internal/exports"
)

func TestPace(t *testing.T) {
	for _, tc := range []struct{ pass, rest time.Duration }{
		{0, 0},
		{minPaced - 1, 0},
		{minPaced, restFactor * minPaced},
		{300 * time.Millisecond, 900 * time.Millisecond},
	} {
		if got := pace(tc.pass); got != tc.rest {
			t.Errorf("pace(%v) = %v, want %v", tc.pass, got, tc.rest)
		}
	}
}

func TestRoutesDiffer(t *testing.T) {
	base := exports.TCP("ns", "web", 80)
	base.ReadyEndpoints = 2
	with := func(f func(*exports.Export)) *exports.Export {
		e := base
		e.Ports = slices.Clone(base.Ports)
		f(&e)
		return &e
	}
	for _, tc := range []struct {
		name string
		a, b *exports.Export
		want bool
	}{
		{"same", &base, with(func(*exports.Export) {}), false},
		{"a label", &base, with(func(e *exports.Export) { e.Labels = map[string]string{"rev": "2"} }), false},
		{"hostnames", &base, with(func(e *exports.Export) { e.Hostnames = []string{"web-0"} }), false},
		{"ready endpoints", &base, with(func(e *exports.Export) { e.ReadyEndpoints = 3 }), true},
		{"a port added", &base, with(func(e *exports.Export) { e.Ports = append(e.Ports, exports.Port{Name: "b", Protocol: "TCP", Port: 81}) }), true},
		{"no longer exported", &base, nil, true},
		{"newly exported", nil, &base, true},
		{"neither", nil, nil, false},
	} {
		if got := routesDiffer(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: routesDiffer = %v, want %v", tc.name, got, tc.want)
		}
	}
}
