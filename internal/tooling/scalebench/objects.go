package scalebench

import (
	"context"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// Namespaces the run uses: exports (and so their mirrors) in one, the API
// floor's objects in another, so the harness's watches tell them apart.
const (
	exportNamespace = "scalebench"
	floorNamespace  = "scalebench-floor"
)

// RevLabel is the exported label the harness changes: a ServiceExport's
// exportedLabels are copied onto its mirror Service, so each change travels
// exporter API → gateway → feed → controller → importer API.
const RevLabel = "scalebench.example.com/rev"

// exportName is the i-th exported Service's name.
func exportName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// forEach runs fn(0..n-1) with at most conc calls at once, stopping at the
// first error.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// The group's context ends with Wait; only the caller's says whether
	// the run was cut short.
	return ctx.Err()
}

// servicePorts are an exported Service's ports: ports TCP ports named
// p0, p1, ...
func servicePorts(ports int) []corev1.ServicePort {
	var out []corev1.ServicePort
	for p := range ports {
		out = append(out, corev1.ServicePort{
			Name: "p" + strconv.Itoa(p), Protocol: corev1.ProtocolTCP,
			Port: int32(80 + p), TargetPort: intstr.FromInt32(int32(sandbox.EchoPort + p)),
		})
	}
	return out
}

// createExport makes what an exported workload is: a Service, the
// EndpointSlice the endpointslice controller would write (one ready pod,
// so the export counts one ready endpoint and its mirror is ready), and the
// ServiceExport `ferry export` writes, with RevLabel exported.
func createExport(ctx context.Context, kube kubernetes.Interface, c client.Client, podIP string, i, ports int) error {
	name := exportName(i)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: exportNamespace, Name: name},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: servicePorts(ports)},
	}
	if err := create(ctx, func() error {
		_, err := kube.CoreV1().Services(exportNamespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("export %s: service: %w", name, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: exportNamespace, Name: name + "-bench",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   testenv.EndpointSliceManagedBy,
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{podIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}},
	}
	for _, p := range svc.Spec.Ports {
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.TargetPort.IntVal), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	if err := create(ctx, func() error {
		_, err := kube.DiscoveryV1().EndpointSlices(exportNamespace).Create(ctx, slice, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("export %s: endpointslice: %w", name, err)
	}
	se := &mcsv1beta1.ServiceExport{
		ObjectMeta: metav1.ObjectMeta{Namespace: exportNamespace, Name: name},
		Spec:       mcsv1beta1.ServiceExportSpec{ExportedLabels: map[string]string{RevLabel: "0"}},
	}
	if err := create(ctx, func() error { return c.Create(ctx, se.DeepCopy()) }); err != nil {
		return fmt.Errorf("export %s: serviceexport: %w", name, err)
	}
	return nil
}

// setRev changes export i's exported RevLabel to rev: one API write on
// the exporter.
func setRev(ctx context.Context, c client.Client, i int, rev string) error {
	se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: exportNamespace, Name: exportName(i)}}
	patch := fmt.Appendf(nil, `{"spec":{"exportedLabels":{%q:%q}}}`, RevLabel, rev)
	if err := c.Patch(ctx, se, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("change %s: %w", se.Name, err)
	}
	return nil
}

// floorOwnership stands in for mirror.OwnershipLabels on the floor's
// objects: the same number of labels with keys and values of about the
// same length, under a prefix that is not Ferry's. With Ferry's own keys the
// controller would take the objects for a Link's (mirror.OwnerOf), cache
// them whole, queue passes of a Link that does not exist and clean them up:
// the floor would then measure Ferry.
var floorOwnership = map[string]string{
	"bench.example.com/lnk": "bench-flr", "bench.example.com/source-cls": "bench-flr",
	"multicluster.bench.example/source-cl": "bench-flr",
}

// createFloorObject writes, directly, what one mirror is (mirror.buildService
// and buildSlice): a selector-less ClusterIP Service whose targetPorts are
// egress ports, with ownership-sized labels and Ferry's annotations, then
// one EndpointSlice listing the gateway pod on those ports. Service first,
// then slice, as the importer writes them.
func createFloorObject(ctx context.Context, kube kubernetes.Interface, gatewayIP string, i, ports int, egress contract.Range) error {
	name := exportName(i) + "-exporter"
	own := floorOwnership
	lbls := map[string]string{RevLabel: "0"}
	for k, v := range own {
		lbls[k] = v
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: floorNamespace, Name: name, Labels: lbls,
			Annotations: map[string]string{
				contract.AnnotationRemoteService:  exportName(i),
				contract.AnnotationExportedKeys:   mirror.ExportedKeysOf(map[string]string{RevLabel: "0"}, nil),
				contract.AnnotationReadyEndpoints: "1",
				contract.AnnotationExportCreated:  time.Now().UTC().Format(time.RFC3339),
			},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: floorNamespace, Name: mirror.SliceName(name, discoveryv1.AddressTypeIPv4),
			Labels: map[string]string{
				// Not contract.ManagedBy, for the reason floorOwnership gives.
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "controller.bench.example",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{gatewayIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}},
	}
	for k, v := range own {
		slice.Labels[k] = v
	}
	for p, sp := range servicePorts(ports) {
		// Distinct ports from the installed range, as the allocator hands
		// them out.
		port := egress.Min + int32((i*ports+p)%int(egress.Max-egress.Min+1))
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: sp.Name, Protocol: corev1.ProtocolTCP, Port: sp.Port, TargetPort: intstr.FromInt32(port)})
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)})
	}
	if err := create(ctx, func() error {
		_, err := kube.CoreV1().Services(floorNamespace).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("floor %s: service: %w", name, err)
	}
	if err := create(ctx, func() error {
		_, err := kube.DiscoveryV1().EndpointSlices(floorNamespace).Create(ctx, slice, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("floor %s: endpointslice: %w", name, err)
	}
	return nil
}

// createAttempts bounds how often create tries one object.
const createAttempts = 5

// create runs one create, again after a server-side timeout or throttling
// (a busy API server on two shared cores answers so at 10k objects), at
// most createAttempts times with a doubling pause. AlreadyExists is
// success: an earlier attempt that timed out may have landed.
func create(ctx context.Context, do func() error) error {
	pause := time.Second
	for attempt := 1; ; attempt++ {
		err := do()
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return nil
		case attempt == createAttempts || !(apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)):
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause *= 2
	}
}
