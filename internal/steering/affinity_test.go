package steering

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAffinity(t *testing.T) {
	for _, tc := range []struct {
		in      string
		tiers   [][]string
		wantErr string
	}{
		{in: "", tiers: nil},
		{in: "none", tiers: nil},
		{in: " local ", tiers: [][]string{{"local"}}},
		{in: "local > eu-west, eu-central", tiers: [][]string{{"local"}, {"eu-west", "eu-central"}}},
		{in: "eu-west>us-east>*", tiers: [][]string{{"eu-west"}, {"us-east"}}},
		{in: "*", tiers: nil},
		{in: "* > east", wantErr: "last tier"},
		{in: "east > > north", wantErr: "empty cluster name"},
		{in: "east,", wantErr: "empty cluster name"},
		{in: "east > east", wantErr: "named twice"},
		{in: "none > east", wantErr: "cannot be combined"},
		{in: "East", wantErr: "East"},
		{in: "clusterset", wantErr: "reserved"},
		{in: strings.Repeat("a", MaxAffinityBytes+1), wantErr: "over 4096"},
	} {
		a, err := ParseAffinity(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(a.Tiers, tc.tiers) {
			t.Errorf("%q: %v, %v; want %v", tc.in, a.Tiers, err, tc.tiers)
			continue
		}
		// String gives back an equivalent annotation.
		again, err := ParseAffinity(a.String())
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Errorf("%q: String %q parses to %v, %v", tc.in, a.String(), again, err)
		}
	}
}

func TestAffinityResolvesLocal(t *testing.T) {
	a, err := ParseAffinity("local > east, north > west")
	if err != nil {
		t.Fatal(err)
	}
	// In west, "local" and "west" are one cluster: its first place counts,
	// and the result is a policy the gateway accepts.
	got := a.resolve("west")
	if !reflect.DeepEqual(got, [][]string{{"west"}, {"east", "north"}}) {
		t.Errorf("in west: %v", got)
	}
	if _, err := ParsePolicy(Policy{Tiers: got}.String()); err != nil {
		t.Errorf("in west: the resolved tiers do not parse back: %v", err)
	}
	// A cluster that does not serve the service itself has no local tier.
	if got := a.resolve(""); !reflect.DeepEqual(got, [][]string{{"east", "north"}, {"west"}}) {
		t.Errorf("not serving: %v", got)
	}
}

func FuzzParseAffinity(f *testing.F) {
	for _, s := range []string{"", "none", "local", "local > a, b > *", "a>b", "*>a", "a,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAffinity(s)
		if err != nil {
			return
		}
		again, err := ParseAffinity(a.String())
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("%q parsed to %v, whose String %q gives %v, %v", s, a, a.String(), again, err)
		}
	})
}
