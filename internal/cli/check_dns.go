package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
)

// corednsConfigMap is where kubeadm, kind and EKS keep CoreDNS's Corefile.
var corednsConfigMap = types.NamespacedName{Namespace: "kube-system", Name: "coredns"}

// clustersetDNS checks what makes <svc>.<ns>.svc.clusterset.local resolve
// in pods (docs/dns.md): CoreDNS's Corefile serves the zone with the
// multicluster option, and its service account may list and watch
// ServiceImports, which `ferry install` grants. From outside the cluster it
// cannot send a query the way a pod does, so it checks the configuration
// that the query depends on.
func (c *checker) clustersetDNS(ctx context.Context) error {
	var cm corev1.ConfigMap
	err := c.k.Client.Get(ctx, corednsConfigMap, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return skipf("no ConfigMap %s: this cluster's DNS is not CoreDNS, or keeps its configuration elsewhere; clusterset.local needs CoreDNS's multicluster support (docs/dns.md)", corednsConfigMap)
	case apierrors.IsForbidden(err):
		return skipf("may not read ConfigMap %s: %s", corednsConfigMap, apierrors.ReasonForError(err))
	case err != nil:
		return c.k.explain("get CoreDNS's ConfigMap", err)
	}
	if ok, why := servesClusterset(cm.Data["Corefile"]); !ok {
		return withHint(fmt.Errorf("CoreDNS (ConfigMap %s) does not serve clusterset.local: %s", corednsConfigMap, why),
			"add the zone and option to the kubernetes block of its Corefile (`kubectl -n %s edit configmap %s`):\n%s",
			corednsConfigMap.Namespace, corednsConfigMap.Name, contract.CorefileStanza)
	}
	user, err := install.CoreDNSUser(install.DefaultCoreDNSServiceAccount)
	if err != nil {
		return err
	}
	for _, verb := range []string{"list", "watch"} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: mcsv1beta1.GroupVersion.Group, Resource: "serviceimports"},
		}}
		switch err := c.k.Client.Create(ctx, sar); {
		case apierrors.IsForbidden(err):
			return skipf("may not ask whether %s may read ServiceImports: %s", user, apierrors.ReasonForError(err))
		case err != nil:
			return c.k.explain("create a SubjectAccessReview", err)
		case !sar.Status.Allowed:
			return withHint(fmt.Errorf("%s may not %s ServiceImports, so CoreDNS cannot serve clusterset.local", user, verb),
				"re-apply `ferry install` (it binds ClusterRole %s to --coredns-service-account, default %s); if CoreDNS runs as another service account, pass it",
				install.CoreDNSRBACName, install.DefaultCoreDNSServiceAccount)
		}
	}
	return nil
}

// servesClusterset reports whether a Corefile has a kubernetes plugin that
// serves clusterset.local with `multicluster clusterset.local`, and if not,
// what is missing. It reads the Corefile's tokens, not its exact text, so
// other zones, options and formatting do not matter.
func servesClusterset(corefile string) (bool, string) {
	const zone = "clusterset.local"
	lines := strings.Split(corefile, "\n")
	sawPlugin, sawZone := false, false
	for i := 0; i < len(lines); i++ {
		f := strings.Fields(stripComment(lines[i]))
		if len(f) == 0 || f[0] != "kubernetes" {
			continue
		}
		sawPlugin = true
		zones := f[1:]
		open := len(zones) > 0 && zones[len(zones)-1] == "{"
		if open {
			zones = zones[:len(zones)-1]
		}
		if !slices.ContainsFunc(zones, func(z string) bool { return strings.TrimSuffix(z, ".") == zone }) {
			continue
		}
		sawZone = true
		for j := i + 1; open && j < len(lines); j++ {
			g := strings.Fields(stripComment(lines[j]))
			if len(g) > 0 && g[0] == "}" {
				break
			}
			if len(g) >= 2 && g[0] == "multicluster" && slices.ContainsFunc(g[1:], func(z string) bool { return strings.TrimSuffix(z, ".") == zone }) {
				return true, ""
			}
		}
	}
	switch {
	case !sawPlugin:
		return false, "it has no kubernetes plugin"
	case !sawZone:
		return false, "its kubernetes plugin does not list the zone " + zone
	}
	return false, "its kubernetes plugin lists " + zone + " without `multicluster " + zone + "`"
}

func stripComment(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		return line[:i]
	}
	return line
}
