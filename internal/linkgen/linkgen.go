package linkgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Options say which cluster to link to and how to override what its API says.
type Options struct {
	// ClusterName is the exporting cluster's name, as its install named it.
	ClusterName string
	// MeshDomain is the mesh's domain, used when the gateway Service does
	// not publish its identity. Default contract.DefaultMeshDomain.
	MeshDomain string
	// GatewayAddresses, if set, replace the addresses read from the gateway
	// Service (host:port; a bare host gets the ingress port).
	GatewayAddresses []string
	// Namespace of Ferry's install. Default ferry-system.
	Namespace string
}

// Default sets the Namespace and MeshDomain when unset.
func (o *Options) Default() {
	o.Namespace = cmp.Or(o.Namespace, contract.SystemNamespace)
	o.MeshDomain = cmp.Or(o.MeshDomain, contract.DefaultMeshDomain)
}

// Generate reads the exporting cluster through c and returns the Link to
// apply in the importing cluster.
func Generate(ctx context.Context, c client.Reader, o Options) (*ferryv1.Link, error) {
	o.Default()
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		return nil, fmt.Errorf("--cluster-name: %w", err)
	}
	var svc corev1.Service
	err := c.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: contract.GatewayName}, &svc)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("no gateway Service %s/%s in this cluster: is Ferry installed here? (ferry install --cluster-name %s | kubectl apply -f -)", o.Namespace, contract.GatewayName, o.ClusterName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading gateway Service %s/%s: %w", o.Namespace, contract.GatewayName, err)
	}
	return FromService(&svc, o)
}

// FromService builds the Link from the exporting cluster's gateway Service.
func FromService(svc *corev1.Service, o Options) (*ferryv1.Link, error) {
	o.Default()
	if err := contract.ValidateClusterName(o.ClusterName); err != nil {
		return nil, fmt.Errorf("--cluster-name: %w", err)
	}
	id, err := gatewayIdentity(svc, o)
	if err != nil {
		return nil, err
	}
	addrs, err := addresses(svc, o.GatewayAddresses)
	if err != nil {
		return nil, err
	}
	return &ferryv1.Link{
		TypeMeta:   metav1.TypeMeta{APIVersion: ferryv1.GroupVersion.String(), Kind: "Link"},
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: o.ClusterName},
		Spec: ferryv1.LinkSpec{
			ClusterName:      o.ClusterName,
			GatewayAddresses: addrs,
			GatewayIdentity:  id.String(),
		},
	}, nil
}

// gatewayIdentity prefers the identity the install published on the Service,
// and refuses one that belongs to another cluster: that is how linking to the
// wrong context is caught before anything is applied.
func gatewayIdentity(svc *corev1.Service, o Options) (identity.ID, error) {
	want := contract.GatewayID(o.MeshDomain, o.ClusterName)
	published, ok := svc.Annotations[contract.AnnotationGatewayIdentity]
	if !ok {
		return want, nil
	}
	// The mesh is the remote install's own, so it is read from the ID; the
	// importing cluster's importer checks it against its mesh on apply.
	id, err := contract.LinkGatewayID(published, o.ClusterName, "")
	if err != nil {
		return identity.ID{}, fmt.Errorf("gateway Service annotation %s: %w: check --context or --cluster-name", contract.AnnotationGatewayIdentity, err)
	}
	return id, nil
}

// addresses reads where other clusters reach the gateway. Only a
// LoadBalancer publishes that; for other types the user must say.
func addresses(svc *corev1.Service, override []string) ([]string, error) {
	port := ingressPort(svc)
	if len(override) > 0 {
		out := make([]string, 0, len(override))
		for _, a := range override {
			if _, _, err := net.SplitHostPort(a); err != nil {
				a = net.JoinHostPort(a, strconv.Itoa(port))
			}
			if _, p, err := net.SplitHostPort(a); err != nil || p == "" {
				return nil, fmt.Errorf("--gateway-address %q: want host or host:port", a)
			}
			out = append(out, a)
		}
		return out, nil
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil, fmt.Errorf("gateway Service is %s, so this cluster cannot tell where other clusters reach it: pass --gateway-address HOST[:PORT]", svc.Spec.Type)
	}
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		host := in.IP
		if host == "" {
			host = in.Hostname
		}
		if host != "" {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(port)))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("gateway Service has no load-balancer address yet: wait for it (kubectl -n ferry-system get svc ferry-gateway) or pass --gateway-address")
	}
	return out, nil
}

func ingressPort(svc *corev1.Service) int {
	for _, p := range svc.Spec.Ports {
		if p.Name == contract.IngressPortName {
			return int(p.Port)
		}
	}
	return contract.IngressPort
}
