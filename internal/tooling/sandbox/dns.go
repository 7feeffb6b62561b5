package sandbox

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// CoreDNSConfigMap is where a cluster's DNS addon keeps its Corefile
// (kubeadm, kind, EKS): namespace and name.
var CoreDNSConfigMap = [2]string{"kube-system", "coredns"}

// startDNS runs the cluster's DNS as a cluster's DNS addon runs: CoreDNS
// with its own service account, which holds the addon's usual rights
// (kubeadm's system:coredns) and, for clusterset.local, only what
// `ferry install` grants it (ferry-coredns). Its Corefile is also kept in
// the addon's ConfigMap, where `ferry check` reads it.
func (c *Cluster) startDNS(ctx context.Context) error {
	ns, name, _ := strings.Cut(install.DefaultCoreDNSServiceAccount, "/")
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:coredns"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
		},
	}
	for _, o := range objs {
		if err := c.API.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("DNS addon: %w", err)
		}
	}
	kubeconfig, err := c.serviceAccountKubeconfig(ctx, ns, name)
	if err != nil {
		return err
	}
	if c.DNS, err = c.API.StartCoreDNSAs(ctx, kubeconfig, c.Name); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: CoreDNSConfigMap[0], Name: CoreDNSConfigMap[1]},
		Data:       map[string]string{"Corefile": testenv.ClustersetCorefile(c.DNS.Addr, kubeconfig, c.Name)},
	}
	if err := c.API.Client.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("DNS addon: Corefile: %w", err)
	}
	return nil
}
