package chaos

import (
	"math"
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	m := func(ports string, ready bool) mirrorState { return mirrorState{ports: ports, ready: ready} }
	want := map[string]mirrorState{"a-east": m("[TCP/80]", true), "b-east": m("[TCP/81]", false)}
	wantI := map[string]bool{"a": true, "b": true}
	for _, tc := range []struct {
		name  string
		haveM map[string]mirrorState
		haveI map[string]bool
		diffs []string
	}{
		{"agree", map[string]mirrorState{"a-east": m("[TCP/80]", true), "b-east": m("[TCP/81]", false)}, map[string]bool{"a": true, "b": true}, nil},
		{"missing mirror and import", map[string]mirrorState{"a-east": m("[TCP/80]", true)}, map[string]bool{"a": true},
			[]string{"mirror b-east missing (want ports [TCP/81] ready false)", "ServiceImport b missing"}},
		{"stale mirror and import", map[string]mirrorState{"a-east": m("[TCP/80]", true), "b-east": m("[TCP/81]", false), "c-east": m("[TCP/80]", true)},
			map[string]bool{"a": true, "b": true, "c": true},
			[]string{"mirror c-east held but not exported", "ServiceImport c held but exported nowhere"}},
		{"wrong port and readiness", map[string]mirrorState{"a-east": m("[TCP/81]", true), "b-east": m("[TCP/81]", true)}, map[string]bool{"a": true, "b": true},
			[]string{"mirror a-east: ports [TCP/81] ready true, want ports [TCP/80] ready true", "mirror b-east: ports [TCP/81] ready true, want ports [TCP/81] ready false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compare(want, wantI, tc.haveM, tc.haveI); !slices.Equal(got, tc.diffs) {
				t.Errorf("compare:\n got %q\nwant %q", got, tc.diffs)
			}
		})
	}
}

func TestTrend(t *testing.T) {
	x := []float64{0, 10, 20, 30, 40}
	for _, tc := range []struct {
		name string
		y    []float64
		want float64
	}{
		{"flat", []float64{5, 5, 5, 5, 5}, 0},
		{"a leak", []float64{0, 1, 2, 3, 4}, 4},
		{"noise around a level", []float64{5, 7, 5, 3, 5}, -1.6},
		{"falling", []float64{8, 6, 4, 2, 0}, -8},
	} {
		if got := trend(x, tc.y); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: trend %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := trend([]float64{1}, []float64{1}); got != 0 {
		t.Errorf("one point: %v", got)
	}
}
