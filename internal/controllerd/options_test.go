package controllerd

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/contract"
)

func TestValidate(t *testing.T) {
	ok := Options{ClusterName: "west"}
	ok.Default()
	before := ok
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal options: %v", err)
	}
	if ok.ClustersetPorts != (contract.Range{Min: 32000, Max: 53999}) {
		t.Errorf("default clusterset ports %v", ok.ClustersetPorts)
	}
	if ok.EgressPorts != contract.DefaultEgressRange() || ok.gateway().String() != "ferry-system/ferry-gateway" || ok.MeshDomain != "ferry.local" {
		t.Errorf("defaults: ports %v gateway %v mesh %q", ok.EgressPorts, ok.gateway(), ok.MeshDomain)
	}
	if ok.GatewayService != before.GatewayService || ok.EgressPorts != before.EgressPorts || ok.Logger != before.Logger {
		t.Error("Validate changed the options")
	}
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"cluster name required", func(o *Options) { o.ClusterName = "" }, "--cluster-name"},
		{"cluster name is a DNS label", func(o *Options) { o.ClusterName = "West_1" }, "--cluster-name"},
		{"mesh domain", func(o *Options) { o.MeshDomain = "not a domain" }, "--mesh-domain"},
		{"port range order", func(o *Options) { o.EgressPorts = contract.Range{Min: 48999, Max: 41000} }, "--egress-port-range"},
		{"port range privileged", func(o *Options) { o.EgressPorts = contract.Range{Min: 80, Max: 90} }, "--egress-port-range"},
		{"clusterset range holds a daemon port", func(o *Options) { o.ClustersetPorts = contract.Range{Min: 9000, Max: 9999} }, "--clusterset-port-range"},
		{"clusterset range overlaps egress", func(o *Options) { o.ClustersetPorts = contract.Range{Min: 31000, Max: 32999} }, "overlaps --egress-port-range"},
		{"gateway service needs a namespace", func(o *Options) { o.GatewayService = "ferry-gateway" }, "--gateway-service"},
		{"metrics address", func(o *Options) { o.MetricsAddr = "9990" }, "--metrics-addr"},
		{"pprof address", func(o *Options) { o.PprofAddr = "6060" }, "--pprof-addr"},
		{"issuer secret name", func(o *Options) { o.IssuerSecret = "Not_Valid" }, "--issuer-secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{ClusterName: "west"}
			o.Default()
			tc.mod(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	o := Options{EgressPorts: contract.Range{Min: 1, Max: 2}, GatewayService: "y"}
	err := o.Validate()
	for _, flag := range []string{"--cluster-name", "--egress-port-range", "--gateway-service"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error %v does not mention %s", err, flag)
		}
	}
}
