package contract

import (
	"slices"
	"strings"
	"testing"
)

func TestParseEgressCallers(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    EgressCallers
		wantErr bool
	}{
		{in: "", want: EgressCallers{}},
		{in: "  ", want: EgressCallers{}},
		{in: "*", want: EgressCallers{Any: true}},
		{in: " * ", want: EgressCallers{Any: true}},
		{in: "shop", want: EgressCallers{Namespaces: []string{"shop"}}},
		{in: "web, batch,web", want: EgressCallers{Namespaces: []string{"batch", "web"}}},
		{in: "*,shop", wantErr: true},
		{in: "shop,", wantErr: true},
		{in: "Shop", wantErr: true},
		{in: "a/b", wantErr: true},
		{in: strings.Repeat("a,", MaxEgressCallerNamespaces) + "a", wantErr: true},
	} {
		got, err := ParseEgressCallers(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("ParseEgressCallers(%q) error %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if err != nil && (got.Any || len(got.Namespaces) > 0) {
			t.Errorf("ParseEgressCallers(%q) failed but allows %+v: it must fail closed", c.in, got)
		}
		if !c.wantErr && (got.Any != c.want.Any || !slices.Equal(got.Namespaces, c.want.Namespaces)) {
			t.Errorf("ParseEgressCallers(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestEgressCallersAllows(t *testing.T) {
	list, _ := ParseEgressCallers("batch,web")
	for ns, want := range map[string]bool{"batch": true, "web": true, "shop": false, "": false} {
		if got := list.Allows(ns); got != want {
			t.Errorf("%+v.Allows(%q) = %v, want %v", list, ns, got, want)
		}
	}
	if !(EgressCallers{Any: true}).Allows("anything") {
		t.Error("* does not allow every namespace")
	}
	if (EgressCallers{}).Allows("shop") {
		t.Error("the zero value allows another namespace")
	}
}

// FuzzParseEgressCallers: what parses allows exactly the names it lists
// (valid DNS labels, sorted, distinct, bounded), or everyone only for "*";
// what fails allows no one.
func FuzzParseEgressCallers(f *testing.F) {
	for _, s := range []string{"", "*", "a,b", "b, a ,a", "*,a", "A", "a,,b", strings.Repeat("x,", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseEgressCallers(in)
		if err != nil {
			if got.Any || len(got.Namespaces) > 0 {
				t.Fatalf("%q failed but allows %+v", in, got)
			}
			return
		}
		if got.Any && (strings.TrimSpace(in) != EgressCallersAny || len(got.Namespaces) > 0) {
			t.Fatalf("%q allows every namespace", in)
		}
		if len(got.Namespaces) > MaxEgressCallerNamespaces || !slices.IsSorted(got.Namespaces) || len(slices.Compact(slices.Clone(got.Namespaces))) != len(got.Namespaces) {
			t.Fatalf("%q: %v is not a sorted, distinct, bounded list", in, got.Namespaces)
		}
		for _, ns := range got.Namespaces {
			if !dnsLabel(ns) || !got.Allows(ns) {
				t.Fatalf("%q: namespace %q", in, ns)
			}
		}
	})
}
