package gatewayd

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/gateway"
)

func TestEgressCallerOptions(t *testing.T) {
	o := Options{ClusterName: "west", RestConfig: &rest.Config{}}
	o.Default()
	if o.EgressCallers != gateway.CallerEnforce || len(o.EgressHostCallers) != 0 {
		t.Fatalf("defaults: mode %q, host callers %v; want enforce and none", o.EgressCallers, o.EgressHostCallers)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.EgressCallers = "off" }, "--egress-callers"},
		{func(o *Options) { o.EgressHostCallers = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")} }, "--egress-host-callers"},
		{func(o *Options) { o.EgressHostCallers = []netip.Prefix{{}} }, "--egress-host-callers"},
		{func(o *Options) { o.PprofAddr = "6061" }, "--pprof-addr"},
	} {
		bad := o
		c.mod(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error about %s, got %v", c.want, err)
		}
	}
	ok := o
	ok.EgressCallers = gateway.CallerAudit
	ok.EgressHostCallers = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/64")}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
