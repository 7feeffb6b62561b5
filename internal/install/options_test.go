package install

import (
	"errors"
	"strings"
	"testing"
)

func TestInvalidOptions(t *testing.T) {
	east := testOptions(t)
	west := optionsFor(t, "ferry.local", "west")
	corp := optionsFor(t, "corp.example", "east")
	cases := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no cluster name", func(o *Options) { o.ClusterName = "" }, "--cluster-name is required"},
		{"bad cluster name", func(o *Options) { o.ClusterName = "East_1" }, `cluster name "East_1"`},
		{"long cluster name", func(o *Options) { o.ClusterName = strings.Repeat("a", 64) }, "cluster name"},
		{"no issuer at all", func(o *Options) { o.IssuerCertPEM, o.IssuerKeyPEM, o.TrustBundlePEM = nil, nil, nil },
			"missing issuer material (--issuer-cert, --issuer-key, --trust-bundle): pass --identity-dir"},
		{"no key", func(o *Options) { o.IssuerKeyPEM = nil }, "missing issuer material (--issuer-key)"},
		{"no bundle", func(o *Options) { o.TrustBundlePEM = nil }, "missing issuer material (--trust-bundle)"},
		{"garbage cert", func(o *Options) { o.IssuerCertPEM = []byte("not pem") }, "issuer"},
		{"key of another issuer", func(o *Options) { o.IssuerKeyPEM = west.IssuerKeyPEM }, "issuer"},
		{"bundle of another mesh", func(o *Options) { o.TrustBundlePEM = corp.TrustBundlePEM }, ""},
		{"issuer of another cluster", func(o *Options) { o.ClusterName = "west" },
			"the issuer is for trust domain east.ferry.local, but cluster \"west\" in mesh \"ferry.local\" needs west.ferry.local: make one with `ferry identity issuer --cluster west`"},
		{"issuer of another mesh", func(o *Options) { o.MeshDomain = "corp.example" }, "needs east.corp.example"},
		{"bad mesh domain", func(o *Options) { o.MeshDomain = "Not A Domain" }, "mesh domain"},
		{"bad service type", func(o *Options) { o.GatewayServiceType = "ExternalName" },
			`gateway service type "ExternalName": want LoadBalancer, NodePort or ClusterIP`},
		{"negative replicas", func(o *Options) { o.GatewayReplicas = -1 }, "gateway replicas -1: must be at least 1"},
		{"negative controller replicas", func(o *Options) { o.ControllerReplicas = -2 }, "controller replicas -2"},
		{"bad tag", func(o *Options) { o.ImageTag = "v1 beta" }, `image tag "v1 beta"`},
		{"bad registry", func(o *Options) { o.Registry = "example.com/" }, "trailing slash"},
		{"bad image", func(o *Options) { o.GatewayImage = "a b" }, `image "a b"`},
		{"ports not a range", func(o *Options) { o.EgressPorts = "41000" }, "want min-max"},
		{"ports not numbers", func(o *Options) { o.EgressPorts = "a-b" }, "want two port numbers"},
		{"ports overlap the clusterset range", func(o *Options) { o.EgressPorts = "41000-49500" }, "overlaps the clusterset port range"},
		{"ports too high", func(o *Options) { o.EgressPorts = "60000-70000" }, "ends above 65535"},
		{"privileged ports", func(o *Options) { o.EgressPorts = "80-2000" }, "below 1024"},
		{"reversed ports", func(o *Options) { o.EgressPorts = "42000-41000" }, "first port is after the last"},
		{"ports include ingress", func(o *Options) { o.EgressPorts = "4000-5000" }, "contains 4143, which a Ferry daemon listens on"},
		{"coredns service account without namespace", func(o *Options) { o.CoreDNSServiceAccount = "coredns" }, "want NAMESPACE/NAME"},
		{"coredns service account not a name", func(o *Options) { o.CoreDNSServiceAccount = "kube-system/Core DNS" }, "want NAMESPACE/NAME"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := east
			c.mod(&o)
			_, err := Render(o)
			if err == nil {
				t.Fatal("Render succeeded")
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("error %q does not wrap ErrInvalidOptions", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines; users get one line", err)
			}
			t.Log(err)
		})
	}
}

func TestServiceTypeAnyCase(t *testing.T) {
	for in, want := range map[string]string{"": "LoadBalancer", "nodeport": "NodePort", "CLUSTERIP": "ClusterIP", "LoadBalancer": "LoadBalancer"} {
		got, err := ParseServiceType(in)
		if err != nil || string(got) != want {
			t.Errorf("ParseServiceType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestMeshDomainFromIssuer(t *testing.T) {
	o := optionsFor(t, "corp.example", "east")
	s, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.meshDomain != "corp.example" {
		t.Errorf("mesh domain %q, want the issuer's, corp.example", s.meshDomain)
	}
}
