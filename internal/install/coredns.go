package install

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CoreDNS serves clusterset.local from ServiceImports (docs/dns.md): its
// kubernetes plugin, with `multicluster clusterset.local`, lists and
// watches them, which a cluster's DNS addon is not allowed by default. The
// install grants exactly that to the cluster's CoreDNS service account.

// DefaultCoreDNSServiceAccount is CoreDNS's service account in kubeadm,
// kind, EKS and most distributions.
const DefaultCoreDNSServiceAccount = "kube-system/coredns"

// CoreDNSRBACName names the ClusterRole and ClusterRoleBinding.
const CoreDNSRBACName = "ferry-coredns"

// parseServiceAccount reads "namespace/name".
func parseServiceAccount(v string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", invalid("--coredns-service-account %q: want NAMESPACE/NAME, such as %s", v, DefaultCoreDNSServiceAccount)
	}
	return ns, name, nil
}

// corednsRBAC is the ClusterRole of Rules' CoreDNSRBACName subject (read
// ServiceImports, at whichever version the plugin watches: the CRD serves
// v1alpha1 too) and its binding to CoreDNS's service account.
func corednsRBAC(s spec) (client.Object, client.Object) {
	component := "coredns"
	var rules []rbacv1.PolicyRule
	for _, r := range Rules() {
		if r.Subject == CoreDNSRBACName {
			rules = append(rules, r.PolicyRule)
		}
	}
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: meta(CoreDNSRBACName, "", component),
		Rules:      rules,
	}
	binding := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: meta(CoreDNSRBACName, "", component),
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: s.corednsNamespace, Name: s.corednsName}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: CoreDNSRBACName},
	}
	return role, binding
}

// CoreDNSUser is the API user of a service account "namespace/name", as a
// SubjectAccessReview names it.
func CoreDNSUser(serviceAccount string) (string, error) {
	ns, name, err := parseServiceAccount(serviceAccount)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("system:serviceaccount:%s:%s", ns, name), nil
}
