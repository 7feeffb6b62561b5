package install

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcscrd "sigs.k8s.io/mcs-api/config/crd"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/api/crds"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/monitoring"
)

// Render validates o and returns every object of the install, in the order
// they must be applied: Namespace, CRDs, ServiceAccounts, RBAC, the issuer
// Secret, the NetworkPolicies (before any pod they protect), Deployments,
// the gateway Service and its PodDisruptionBudget; with o.Alerts, then the
// PrometheusRule.
func Render(o Options) ([]client.Object, error) {
	s, err := o.resolve()
	if err != nil {
		return nil, err
	}
	return build(s)
}

// Inventory is what an install creates, without any content that depends on
// Options: the objects to delete on uninstall, in reverse apply order.
func Inventory() ([]client.Object, error) {
	objs, err := build(spec{clusterName: "inventory", meshDomain: "inventory", serviceType: string(DefaultGatewayServiceType),
		corednsNamespace: "inventory", corednsName: "inventory"})
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(objs))
	for i := len(objs) - 1; i >= 0; i-- {
		u := &metav1.PartialObjectMetadata{TypeMeta: typeMeta(objs[i])}
		u.Name, u.Namespace = objs[i].GetName(), objs[i].GetNamespace()
		out = append(out, u)
	}
	return out, nil
}

func typeMeta(o client.Object) metav1.TypeMeta {
	gvk := o.GetObjectKind().GroupVersionKind()
	return metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind}
}

// build makes the objects from a resolved spec. It does not validate, so
// that Chart can feed it placeholders.
func build(s spec) ([]client.Object, error) {
	objs := []client.Object{namespace()}
	crdObjs, err := CRDs()
	if err != nil {
		return nil, err
	}
	objs = append(objs, crdObjs...)
	objs = append(objs, serviceAccount(contract.ControllerName, "controller"), serviceAccount(contract.GatewayName, "gateway"))
	objs = append(objs, rbacObjects(s)...)
	objs = append(objs, issuerSecret(s))
	objs = append(objs, controllerNetworkPolicy(), gatewayNetworkPolicy(s))
	objs = append(objs, controllerDeployment(s), gatewayDeployment(s), gatewayService(s), gatewayPDB())
	if s.alerts {
		objs = append(objs, alertRules(), podMonitor())
	}
	return objs, nil
}

// alertRules is the PrometheusRule of Ferry's alerts. It and the PodMonitor
// are last: nothing depends on them, and an apply that fails on them for
// want of the prometheus-operator CRDs has installed everything else.
func alertRules() client.Object {
	return monitoring.PrometheusRule(partOf, contract.SystemNamespace, labels(""))
}

// podMonitor has both daemons scraped, so the alerts have series: rules
// without a scrape would never fire.
func podMonitor() client.Object {
	return monitoring.PodMonitor(partOf, contract.SystemNamespace, labels(""), map[string]string{"app.kubernetes.io/part-of": partOf})
}

// CRDDocuments are the CRDs' YAML exactly as embedded in this module and in
// sigs.k8s.io/mcs-api, never copied: Ferry's Link, then ServiceExport and
// ServiceImport.
func CRDDocuments() [][]byte {
	return append(crds.All(), mcscrd.ServiceExportCRD, mcscrd.ServiceImportCRD)
}

// CRDs decodes CRDDocuments.
func CRDs() ([]client.Object, error) {
	var out []client.Object
	for _, doc := range CRDDocuments() {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(doc, crd); err != nil {
			return nil, fmt.Errorf("install: decode embedded CRD: %w", err)
		}
		// Status is the API server's to write; an applied status is ignored
		// at best.
		crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
		out = append(out, crd)
	}
	return out, nil
}

const partOf = "ferry"

// labels marks every installed object as Ferry's. Component objects also get
// a name, which is the selector of their pods: keep it stable, because a
// Deployment's selector is immutable.
func labels(component string) map[string]string {
	l := map[string]string{"app.kubernetes.io/part-of": partOf}
	if component != "" {
		for k, v := range selector(component) {
			l[k] = v
		}
		l["app.kubernetes.io/component"] = component
	}
	return l
}

func selector(component string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": "ferry-" + component}
}

func meta(name, ns, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(component)}
}

func namespace() *corev1.Namespace {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: meta(contract.SystemNamespace, "", ""),
	}
	// Pod Security Admission enforces the "restricted" profile, so a pod
	// that loses its hardening in some later edit is refused, not run.
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	ns.Labels["pod-security.kubernetes.io/warn"] = "restricted"
	return ns
}

func serviceAccount(name, component string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(name, contract.SystemNamespace, component),
	}
}

// issuerSecret is a kubernetes.io/tls Secret, so that standard tooling
// (kubectl, cert-manager's conventions) understands it; ca.crt carries the
// trust bundle.
func issuerSecret(s spec) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(contract.IssuerSecret, contract.SystemNamespace, "controller"),
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       s.issuerCert,
			corev1.TLSPrivateKeyKey: s.issuerKey,
			"ca.crt":                s.trustBundle,
		},
	}
}

// Unstructured converts objects to plain maps, dropping what an applied
// manifest must not carry (status, null creationTimestamps), so the output
// is what a person would write.
func Unstructured(objs []client.Object) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("install: encode %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("install: encode %s: %w", o.GetName(), err)
		}
		delete(m, "status")
		dropNullTimestamps(m)
		out = append(out, m)
	}
	return out, nil
}

func dropNullTimestamps(v any) {
	switch v := v.(type) {
	case map[string]any:
		if ts, ok := v["creationTimestamp"]; ok && ts == nil {
			delete(v, "creationTimestamp")
		}
		for _, c := range v {
			dropNullTimestamps(c)
		}
	case []any:
		for _, c := range v {
			dropNullTimestamps(c)
		}
	}
}

// YAML encodes objects as one YAML stream, documents separated by "---",
// for `kubectl apply -f -`.
func YAML(objs []client.Object) ([]byte, error) {
	maps, err := Unstructured(objs)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, m := range maps {
		b, err := yaml.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("install: yaml: %w", err)
		}
		out = append(out, "---\n"...)
		out = append(out, b...)
	}
	return out, nil
}
