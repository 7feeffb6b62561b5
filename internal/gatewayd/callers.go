package gatewayd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/gateway"
)

// decide is the whole rule for one egress caller (docs/contracts.md,
// "Egress callers"), from what the caches say:
//
//   - nothing is known until the caches have synced (fail closed);
//   - an address that is no running pod's (a node, a hostNetwork pod, a
//     host outside the cluster) is refused unless an operator listed it
//     (--egress-host-callers);
//   - a pod may use the egress ports of a Service in its own namespace, or
//     in a namespace whose ferry.dev/egress-callers annotation lets the
//     pod's namespace in. When two pods share the address (one ending, one
//     starting), every one of them must be allowed.
func decide(synced bool, callerNamespaces []string, hostAllowed bool, serviceNamespace string, wider contract.EgressCallers) string {
	switch {
	case !synced:
		return gateway.ReasonCallerNotSynced
	case len(callerNamespaces) == 0 && hostAllowed:
		return ""
	case len(callerNamespaces) == 0:
		return gateway.ReasonCallerNotPod
	}
	for _, ns := range callerNamespaces {
		if ns != serviceNamespace && !wider.Allows(ns) {
			return gateway.ReasonCallerNamespace
		}
	}
	return ""
}

// podsByIP is the pod index's name.
const podsByIP = "ip"

// podFieldSelector asks the API server only for the pods that can be
// callers: not hostNetwork (their address is the node's, shared by every
// hostNetwork pod of the node, so it names no namespace) and not finished
// (a finished pod's address may already belong to another pod).
const podFieldSelector = "spec.hostNetwork=false,status.phase!=Succeeded,status.phase!=Failed"

// callers implements gateway.CallerPolicy from a Pod informer indexed by IP
// and a Namespace informer. Both keep only what the rule reads: a pod is its
// name, namespace, phase and IPs (a few hundred bytes, where a full Pod is
// tens of kilobytes); a namespace is its parsed annotation.
type callers struct {
	pods       toolscache.SharedIndexInformer
	namespaces toolscache.SharedIndexInformer
	nsHandler  toolscache.ResourceEventHandlerRegistration
	hosts      []netip.Prefix
	log        *slog.Logger

	mu    sync.RWMutex
	wider map[string]contract.EgressCallers
}

var _ gateway.CallerPolicy = (*callers)(nil)

func newCallers(kube kubernetes.Interface, hosts []netip.Prefix, log *slog.Logger) (*callers, error) {
	if _, err := fields.ParseSelector(podFieldSelector); err != nil {
		return nil, fmt.Errorf("gatewayd: pod field selector: %w", err)
	}
	c := &callers{hosts: hosts, log: log.With("component", "callers"), wider: map[string]contract.EgressCallers{}}
	rc := kube.CoreV1().RESTClient()
	c.pods = toolscache.NewSharedIndexInformer(
		toolscache.NewFilteredListWatchFromClient(rc, "pods", metav1.NamespaceAll, func(o *metav1.ListOptions) { o.FieldSelector = podFieldSelector }),
		&corev1.Pod{}, 0, toolscache.Indexers{podsByIP: indexPodIPs})
	if err := c.pods.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("gatewayd: pod informer: %w", err)
	}
	c.namespaces = toolscache.NewSharedIndexInformer(
		toolscache.NewListWatchFromClient(rc, "namespaces", metav1.NamespaceAll, fields.Everything()),
		&corev1.Namespace{}, 0, toolscache.Indexers{})
	if err := c.namespaces.SetTransform(slimNamespace); err != nil {
		return nil, fmt.Errorf("gatewayd: namespace informer: %w", err)
	}
	var err error
	c.nsHandler, err = c.namespaces.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    c.setNamespace,
		UpdateFunc: func(_, o any) { c.setNamespace(o) },
		DeleteFunc: c.deleteNamespace,
	})
	if err != nil {
		return nil, fmt.Errorf("gatewayd: namespace informer: %w", err)
	}
	return c, nil
}

// Run runs both informers until ctx ends.
func (c *callers) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, inf := range []toolscache.SharedIndexInformer{c.pods, c.namespaces} {
		wg.Add(1)
		go func() { defer wg.Done(); inf.Run(ctx.Done()) }()
	}
	wg.Wait()
	return nil
}

func (c *callers) synced() bool {
	return c.pods.HasSynced() && c.namespaces.HasSynced() && c.nsHandler.HasSynced()
}

// Synced is the readiness check: a gateway whose caches have not synced
// refuses every caller, so it must not be in its Service yet.
func (c *callers) Synced() error {
	if !c.synced() {
		return errors.New("pod and namespace caches not synced")
	}
	return nil
}

// Refuse implements gateway.CallerPolicy, from memory.
func (c *callers) Refuse(addr netip.Addr, namespace string) string {
	if !c.synced() {
		return gateway.ReasonCallerNotSynced
	}
	objs, err := c.pods.GetIndexer().ByIndex(podsByIP, addr.String())
	if err != nil {
		// Only an unknown index name fails, which is a bug; refuse.
		return gateway.ReasonCallerNotSynced
	}
	nss := make([]string, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			nss = append(nss, p.Namespace)
		}
	}
	hostAllowed := false
	for _, p := range c.hosts {
		hostAllowed = hostAllowed || p.Contains(addr)
	}
	c.mu.RLock()
	wider := c.wider[namespace]
	c.mu.RUnlock()
	return decide(true, nss, hostAllowed, namespace, wider)
}

// indexPodIPs indexes a pod under each of its IPs in canonical form (the
// form netip.Addr.String gives a caller's address).
func indexPodIPs(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	ips := make([]string, 0, len(p.Status.PodIPs)+1)
	for _, s := range append([]string{p.Status.PodIP}, podIPs(p)...) {
		if a, err := netip.ParseAddr(s); err == nil {
			ips = append(ips, a.Unmap().String())
		}
	}
	// status.podIP is status.podIPs[0]: index each address once.
	slices.Sort(ips)
	return slices.Compact(ips), nil
}

func podIPs(p *corev1.Pod) []string {
	out := make([]string, len(p.Status.PodIPs))
	for i, ip := range p.Status.PodIPs {
		out[i] = ip.IP
	}
	return out
}

// slimPod keeps what indexPodIPs and Refuse read.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: the store only needs its key
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion},
		Spec:       corev1.PodSpec{HostNetwork: p.Spec.HostNetwork},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}, nil
}

// slimNamespace keeps the name and the one annotation the rule reads.
func slimNamespace(obj any) (any, error) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	out := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion}}
	if v, ok := n.Annotations[contract.AnnotationEgressCallers]; ok {
		out.Annotations = map[string]string{contract.AnnotationEgressCallers: v}
	}
	return out, nil
}

func (c *callers) setNamespace(obj any) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	v, set := n.Annotations[contract.AnnotationEgressCallers]
	wider, err := contract.ParseEgressCallers(v)
	if err != nil {
		// Fail closed: the namespace's imports stay its own.
		c.log.Warn("ignoring an invalid annotation; only the namespace's own pods may use its imports",
			"namespace", n.Name, "annotation", contract.AnnotationEgressCallers, "value", v, "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !set || err != nil {
		delete(c.wider, n.Name)
		return
	}
	c.wider[n.Name] = wider
}

func (c *callers) deleteNamespace(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Namespace); ok {
		c.mu.Lock()
		delete(c.wider, n.Name)
		c.mu.Unlock()
	}
}
