package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/endpoints"
)

// The labels kube-controller-manager's endpointslice controller puts on the
// slices it manages; Ferry's gateway selects slices by them.
const (
	EndpointSliceManagedBy    = "endpointslice-controller.k8s.io"
	DefaultBackendPortName    = "tcp"
	defaultBackendServicePort = 80
)

// Endpoint is one backend address in a Service's EndpointSlice.
type Endpoint struct {
	IP    string
	Port  int32
	Ready bool
	// Hostname is set for headless Services' pods.
	Hostname string
}

// Backend describes a Service and its endpoints, as kube-controller-manager
// would have them after pods matched the Service's selector.
type Backend struct {
	Namespace, Name string
	// Port is the Service port (default 80); its name is DefaultBackendPortName.
	Port      int32
	Headless  bool
	Labels    map[string]string
	Endpoints []Endpoint
}

// EnsureNamespace creates the namespace if it does not exist.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	_, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// CreateBackend creates a Service and one EndpointSlice for it.
func (c *Cluster) CreateBackend(ctx context.Context, b Backend) (*corev1.Service, error) {
	if b.Port == 0 {
		b.Port = defaultBackendServicePort
	}
	if err := c.EnsureNamespace(ctx, b.Namespace); err != nil {
		return nil, err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Name, Labels: b.Labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": b.Name},
			Ports: []corev1.ServicePort{{
				Name:       DefaultBackendPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       b.Port,
				TargetPort: intstr.FromString(DefaultBackendPortName),
			}},
		},
	}
	if b.Headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	svc, err := c.Kube.CoreV1().Services(b.Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", b.Namespace, b.Name, err)
	}
	if err := c.SetEndpoints(ctx, b.Namespace, b.Name, b.Endpoints); err != nil {
		return nil, err
	}
	return svc, nil
}

// SetEndpoints replaces the endpoints of a Service created by CreateBackend,
// as the endpointslice controller would when pods come, go or change
// readiness.
func (c *Cluster) SetEndpoints(ctx context.Context, namespace, service string, eps []Endpoint) error {
	svc, err := c.Kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      service + "-testenv",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: service,
				discoveryv1.LabelManagedBy:   EndpointSliceManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	// One slice carries one port set, as the real controller groups them.
	var port int32
	for _, ep := range eps {
		if port == 0 {
			port = ep.Port
		} else if ep.Port != port {
			return errors.New("testenv: all endpoints of one backend must share a port")
		}
		e := discoveryv1.Endpoint{
			Addresses:  []string{ep.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ep.Ready), Serving: ptr.To(ep.Ready), Terminating: ptr.To(false)},
		}
		if ep.Hostname != "" {
			e.Hostname = ptr.To(ep.Hostname)
		}
		slice.Endpoints = append(slice.Endpoints, e)
	}
	if port != 0 {
		slice.Ports = []discoveryv1.EndpointPort{{Name: ptr.To(DefaultBackendPortName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}}
	}
	api := c.Kube.DiscoveryV1().EndpointSlices(namespace)
	cur, err := api.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("endpointslice %s/%s: %w", namespace, slice.Name, err)
	}
	return nil
}

// ErrNoReadyEndpoints is returned by DialService when the Service has no
// ready endpoint for the port, which is what a client would see as a refused
// connection.
var ErrNoReadyEndpoints = errors.New("no ready endpoints")

// Dialer dials from wherever the client is: the host, or a network namespace.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// DialService connects to Service namespace/name on port as kube-proxy would
// route it: it maps the Service port to its name, then picks a random ready
// endpoint among the Service's EndpointSlices that carries that port name. A
// nil dial uses the host network.
func (c *Cluster) DialService(ctx context.Context, dial Dialer, namespace, name string, port int32) (net.Conn, error) {
	addrs, err := c.ServiceEndpoints(ctx, namespace, name, port)
	if err != nil {
		return nil, err
	}
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	addr := addrs[rand.IntN(len(addrs))]
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s/%s:%d via endpoint %s: %w", namespace, name, port, addr, err)
	}
	return conn, nil
}

// ServiceEndpoints returns the ready "ip:port" addresses behind a Service port,
// by the same rule the gateway uses (package endpoints).
func (c *Cluster) ServiceEndpoints(ctx context.Context, namespace, name string, port int32) ([]string, error) {
	svc, err := c.Kube.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, name, err)
	}
	list, err := c.Kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("endpointslices of %s/%s: %w", namespace, name, err)
	}
	slices := make([]*discoveryv1.EndpointSlice, len(list.Items))
	for i := range list.Items {
		slices[i] = &list.Items[i]
	}
	addrs, err := endpoints.Ready(svc, slices, port)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("service %s/%s port %d: %w", namespace, name, port, ErrNoReadyEndpoints)
	}
	return addrs, nil
}

// DialName connects to host:port as a pod would: host is resolved by the
// cluster's DNS (resolver). An address that is a Service's ClusterIP is
// routed as kube-proxy would, to a ready endpoint of that Service port; any
// other is a pod's (a headless name), dialled directly.
func (c *Cluster) DialName(ctx context.Context, resolver *net.Resolver, dial Dialer, host string, port int32) (net.Conn, error) {
	ips, err := resolver.LookupHost(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	list, err := c.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	for _, ip := range ips {
		for _, s := range list.Items {
			if slices.Contains(s.Spec.ClusterIPs, ip) || s.Spec.ClusterIP == ip {
				return c.DialService(ctx, dial, s.Namespace, s.Name, port)
			}
		}
	}
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	addr := net.JoinHostPort(ips[rand.IntN(len(ips))], strconv.Itoa(int(port)))
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s at pod address %s: %w", host, addr, err)
	}
	return conn, nil
}
