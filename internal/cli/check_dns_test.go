package cli

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
)

func TestServesClusterset(t *testing.T) {
	for _, tc := range []struct {
		name, corefile string
		ok             bool
		why            string
	}{
		{"the documented stanza", kubeadmCorefile(contract.CorefileStanza), true, ""},
		{"other zones, options and a trailing dot", `.:53 {
    kubernetes cluster.local in-addr.arpa clusterset.local. {   # MCS
        pods insecure
        multicluster clusterset.local.
        fallthrough in-addr.arpa
    }
}`, true, ""},
		{"kubeadm's default", kubeadmCorefile("kubernetes cluster.local in-addr.arpa ip6.arpa {\n    pods insecure\n}"), false, "does not list the zone clusterset.local"},
		{"zone without the option", kubeadmCorefile("kubernetes cluster.local clusterset.local {\n    pods insecure\n}"), false, "without `multicluster clusterset.local`"},
		{"option commented out", kubeadmCorefile("kubernetes cluster.local clusterset.local {\n    # multicluster clusterset.local\n}"), false, "without `multicluster"},
		{"option in another block", ".:53 {\n    kubernetes cluster.local clusterset.local\n    forward . 1.1.1.1 {\n        multicluster clusterset.local\n    }\n}", false, "without `multicluster"},
		{"no kubernetes plugin", ".:53 {\n    forward . /etc/resolv.conf\n}", false, "no kubernetes plugin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := servesClusterset(tc.corefile)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("servesClusterset = %v, %q; want %v, %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

// TestCheckClustersetDNS: a Corefile without the multicluster option, and
// CoreDNS's service account without the right to read ServiceImports, are
// each a warning that says what to change.
func TestCheckClustersetDNS(t *testing.T) {
	c := healthyNorth(t)
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: "kube-system", Name: "coredns"}, &cm); err != nil {
		t.Fatal(err)
	}
	setCorefile := func(block string) {
		cm.Data["Corefile"] = kubeadmCorefile(block)
		if err := c.Update(ctx, &cm); err != nil {
			t.Fatal(err)
		}
	}
	setCorefile("kubernetes cluster.local clusterset.local {\n    pods insecure\n}")
	out := mustFerryOn(t, checked, "check")
	for _, want := range []string{
		"⚠ CoreDNS serves clusterset.local\n    CoreDNS (ConfigMap kube-system/coredns) does not serve clusterset.local: its kubernetes plugin lists clusterset.local without `multicluster clusterset.local`",
		"edit configmap coredns",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	setCorefile(contract.CorefileStanza)
	binding := &rbacv1.ClusterRoleBinding{}
	if err := c.Get(ctx, types.NamespacedName{Name: install.CoreDNSRBACName}, binding); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	out = mustFerryOn(t, checked, "check")
	if want := "⚠ CoreDNS serves clusterset.local\n    system:serviceaccount:kube-system:coredns may not list ServiceImports"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
