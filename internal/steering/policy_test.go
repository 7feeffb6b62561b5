package steering

import (
	"reflect"
	"strings"
	"testing"
)

func TestPolicyRoundTrip(t *testing.T) {
	for _, p := range []Policy{
		{},
		{Tiers: [][]string{{"west"}, {"east", "north"}}},
		{Route: "TCPRoute shop/cart-split", Weights: map[string]uint32{"east": 90, "west": 10}},
		{Route: "HTTPRoute shop/x", Weights: map[string]uint32{"east": 0, "north": MaxWeight}, Tiers: [][]string{{"north"}}},
	} {
		s := p.String()
		got, err := ParsePolicy(s)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%+v: String %q parses to %+v, %v", p, s, got, err)
		}
		if p.IsDefault() != (s == "") {
			t.Errorf("%+v: IsDefault %v but String %q", p, p.IsDefault(), s)
		}
	}
	if s := (Policy{Route: "TCPRoute a/b", Weights: map[string]uint32{"b": 1, "a": 2}}).String(); s != "route=TCPRoute/a/b weights=a:2,b:1" {
		t.Errorf("String is not in a fixed order: %q", s)
	}
}

func TestParsePolicyRefusesWhatItDidNotWrite(t *testing.T) {
	for _, s := range []string{
		"weights=east",                             // no weight
		"weights=east:-1",                          // negative
		"weights=east:1000001",                     // over MaxWeight
		"weights=east:1,east:2",                    // twice
		"weights=East:1",                           // not a cluster name
		"tiers=west>west",                          // twice
		"tiers=west>>east",                         // empty
		"route=TCPRoute",                           // not Kind/ns/name
		"colour=blue",                              // unknown
		"weights=a:1 weights=b:1",                  // repeated field
		"route",                                    // not key=value
		strings.Repeat("x", 17<<10),                // over MaxPolicyBytes
		"weights=clusterset:1",                     // reserved
		"tiers=" + strings.Repeat("a,", 300) + "b", // duplicates and over MaxClusters
	} {
		if p, err := ParsePolicy(s); err == nil {
			t.Errorf("%.60q parsed to %+v", s, p)
		}
	}
}

func TestApply(t *testing.T) {
	clusters := []Cluster{{"east", 1}, {"north", 3}, {"west", 0}}
	for _, tc := range []struct {
		name string
		p    Policy
		want []Share
	}{
		{"default: by ready endpoints, one tier", Policy{}, []Share{
			{"east", -1, 1, 0}, {"north", -1, 3, 0}, {"west", -1, 0, 0}}},
		{"route weights replace the counts; unnamed clusters weigh 0", Policy{Route: "TCPRoute a/b", Weights: map[string]uint32{"east": 90, "west": 10}}, []Share{
			{"east", 90, 90, 0}, {"north", 0, 0, 0}, {"west", 10, 0, 0}}}, // west has no ready endpoint
		{"tiers; unnamed clusters last", Policy{Tiers: [][]string{{"west"}, {"north"}}}, []Share{
			{"east", -1, 1, 2}, {"north", -1, 3, 1}, {"west", -1, 0, 0}}},
	} {
		if got := Apply(tc.p, clusters); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"", "route=TCPRoute/a/b weights=a:1,b:2 tiers=a>b,c", "weights=", "tiers=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		again, err := ParsePolicy(p.String())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%q parsed to %+v, whose String %q gives %+v, %v", s, p, p.String(), again, err)
		}
	})
}

func TestExpected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shares []Share
		want   []float64
	}{
		{"one tier, by weight", []Share{{"a", -1, 1, 0}, {"b", -1, 3, 0}}, []float64{0.25, 0.75}},
		{"the first tier with weight takes all", []Share{{"a", -1, 0, 0}, {"b", -1, 2, 1}, {"c", -1, 2, 1}, {"d", -1, 5, 2}}, []float64{0, 0.5, 0.5, 0}},
		{"no weight anywhere: even, but not where a route says 0", []Share{{"a", 0, 0, 0}, {"b", 5, 0, 0}, {"c", -1, 0, 1}}, []float64{0, 0.5, 0.5}},
	} {
		if got := Expected(tc.shares); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
