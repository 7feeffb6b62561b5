package contract

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
)

func TestLinkGatewayID(t *testing.T) {
	const gw = "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway"
	cases := []struct {
		name, id, cluster, mesh string
		want                    string // error substring; "" means accepted
	}{
		{"gateway of the cluster", gw, "east", "ferry.local", ""},
		{"mesh read from the ID", gw, "east", "", ""},
		{"another cluster's gateway", "spiffe://north.ferry.local/ns/ferry-system/sa/ferry-gateway", "east", "ferry.local", `belongs to cluster "north", not "east"`},
		{"the controller", "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-controller", "east", "ferry.local", "is not a gateway"},
		{"a workload", "spiffe://east.ferry.local/ns/shop/sa/ferry-gateway", "east", "ferry.local", "is not a gateway"},
		{"another mesh", "spiffe://east.corp.example/ns/ferry-system/sa/ferry-gateway", "east", "ferry.local", `is not in mesh "ferry.local"`},
		{"not SPIFFE", "https://east.ferry.local/", "east", "ferry.local", "gatewayIdentity"},
		{"reserved cluster", "spiffe://clusterset.ferry.local/ns/ferry-system/sa/ferry-gateway", "clusterset", "ferry.local", "reserved"},
		{"bad cluster name", gw, "East", "ferry.local", "clusterName"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := LinkGatewayID(tc.id, tc.cluster, tc.mesh)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id != GatewayID("ferry.local", "east") {
					t.Fatalf("id = %v", id)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The rule for names holds for every caller: the identity package checks
// only the DNS-label syntax, the contract adds the reservation.
func TestValidateClusterNameAgreesWithIdentity(t *testing.T) {
	for _, name := range []string{"east", "us-east-1", "a", "", "East", "east.", "-east", strings.Repeat("x", 64), "a_b", "east\x00", "clusterset"} {
		syntax := identity.ValidateDNSLabel(name) == nil
		policy := ValidateClusterName(name) == nil
		if policy && !syntax {
			t.Errorf("%q: the contract accepts a name the identity syntax refuses", name)
		}
		if syntax != policy && name != ClustersetCluster {
			t.Errorf("%q: syntax %v, policy %v: only the reserved name may differ", name, syntax, policy)
		}
	}
}

func TestIsGatewayAndController(t *testing.T) {
	gw, ctl := GatewayID("m.example", "east"), ControllerID("m.example", "east")
	if !IsGateway(gw) || IsGateway(ctl) || !IsController(ctl) || IsController(gw) {
		t.Fatalf("IsGateway/IsController disagree with GatewayID/ControllerID")
	}
	if err := AllowRemote("west", GatewayServiceAccount)(gw); err != nil {
		t.Errorf("remote gateway refused: %v", err)
	}
	for _, id := range []identity.ID{GatewayID("m.example", "west"), ctl, {MeshDomain: "m.example", Cluster: "east", Namespace: "shop", ServiceAccount: GatewayServiceAccount}} {
		if AllowRemote("west", GatewayServiceAccount)(id) == nil {
			t.Errorf("%v admitted as a remote gateway", id)
		}
	}
}
