package contract

import "testing"

func TestParseRange(t *testing.T) {
	cases := []struct {
		in   string
		want Range
		ok   bool
	}{
		{"41000-48999", Range{41000, 48999}, true},
		{" 2000 - 2000 ", Range{2000, 2000}, true},
		{"48999-41000", Range{}, false},
		{"80-90", Range{}, false},
		{"41000-70000", Range{}, false},
		{"41000", Range{}, false},
		{"a-b", Range{}, false},
	}
	for _, tc := range cases {
		got, err := ParseRange(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRange(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRangeRefusesDaemonPorts(t *testing.T) {
	for _, r := range []string{"4000-5000", "9990-9999", "4191-4191"} {
		rg, err := ParseRange(r)
		if err == nil {
			t.Errorf("range %s (%v) accepted although it holds a daemon port", r, rg)
		}
	}
	if _, err := ParseRange("41000-48999"); err != nil {
		t.Errorf("default range refused: %v", err)
	}
}

func TestRangeOverlaps(t *testing.T) {
	cases := []struct {
		a, b Range
		want bool
	}{
		{DefaultEgressRange(), DefaultClustersetRange(), false},
		{Range{41000, 42000}, Range{42000, 43000}, true},
		{Range{41000, 48999}, Range{45000, 45000}, true},
		{Range{41000, 41999}, Range{42000, 42999}, false},
	}
	for _, tc := range cases {
		if got := tc.a.Overlaps(tc.b); got != tc.want || tc.b.Overlaps(tc.a) != tc.want {
			t.Errorf("%s overlaps %s = %v, want %v (both orders)", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestDefaultRangesAreValid(t *testing.T) {
	for _, r := range []Range{DefaultEgressRange(), DefaultClustersetRange()} {
		if err := r.Validate(); err != nil {
			t.Errorf("default range %s: %v", r, err)
		}
	}
}
