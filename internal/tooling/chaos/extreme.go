package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// extremeCase is one odd Service B3 exports from east, and what must come
// of it: a refusal with Reason on the ServiceExport, or (Reason empty) a
// mirror in west with the Service's ports, ready.
type extremeCase struct {
	name      string
	what      string
	svc       func(name string) *corev1.Service
	endpoints int // ready endpoints to publish, in slices of at most 1,000
	reason    string
}

func service(name string, mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}}
	mutate(s)
	return s
}

func tcpPorts(n int) []corev1.ServicePort {
	ps := make([]corev1.ServicePort, n)
	for i := range ps {
		ps[i] = corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: corev1.ProtocolTCP, Port: int32(1000 + i), TargetPort: intstr.FromInt32(8080)}
	}
	return ps
}

var extremeCases = []extremeCase{
	{name: "b3-noports", what: "headless, no ports", reason: exports.ReasonNoTCPPorts,
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
		}},
	{name: "b3-udp", what: "UDP only", reason: exports.ReasonNoTCPPorts,
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}}
			})
		}},
	{name: "b3-external", what: "ExternalName", reason: exports.ReasonInvalidServiceType,
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "db.example.internal"
			})
		}},
	{name: "b3-1000ports", what: "1,000 TCP ports", reason: exports.ReasonTooLarge,
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) { s.Spec.Ports = tcpPorts(1000) })
		}},
	{name: "b3-" + strings.Repeat("n", 60), what: "a 63-character name",
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) { s.Spec.Ports = tcpPorts(1) })
		}, endpoints: 1},
	{name: "b3-wide", what: "10,000 ready endpoints in 10 slices",
		svc: func(n string) *corev1.Service {
			return service(n, func(s *corev1.Service) { s.Spec.Ports = tcpPorts(2) })
		}, endpoints: 10000},
}

// B3 exports each extremeCase from east and waits for its outcome: the
// refusal on east's ServiceExport, with a message, or the mirror in west
// with the Service's ports and ready endpoints. No daemon may exit or
// panic.
func (e *Env) B3(ctx context.Context) (row Row, err error) {
	row = Row{ID: "B3", Scenario: "extreme Services exported: no ports, UDP only, ExternalName, 1,000 ports, a 63-character name, 10,000 endpoints",
		Criterion: "0 panics; each refused with a clear condition, or imported correctly"}
	row.Pass = true
	for _, c := range extremeCases {
		started := time.Now()
		got, err := e.extreme(ctx, c)
		if err != nil {
			return row, fmt.Errorf("%s (%s): %w", c.what, c.name, err)
		}
		row.detail("%s: %s (%s)", c.what, got, since(time.Since(started)))
		if err := e.unexport(ctx, c.name); err != nil {
			return row, err
		}
	}
	panics := 0
	for _, c := range e.SB.Clusters {
		for _, p := range []interface {
			Exited() bool
			LogPath() string
		}{c.Controller, c.Gateway} {
			if p.Exited() {
				row.Pass = false
				row.detail("%s: exited", p.LogPath())
			}
			data, err := os.ReadFile(p.LogPath())
			if err != nil {
				return row, err
			}
			if strings.Contains(string(data), "panic:") {
				panics++
				row.Pass = false
				row.detail("%s: panicked", p.LogPath())
			}
		}
	}
	row.Figure = fmt.Sprintf("%d cases as expected; %d panics", len(extremeCases), panics)
	return row, nil
}

// unexport removes what extreme made for name: the checker of the other
// scenarios knows nothing of refusals.
func (e *Env) unexport(ctx context.Context, name string) error {
	c := e.East.API.Client
	for _, o := range []client.Object{
		&mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name}},
	} {
		if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clean up %s: %w", name, err)
		}
	}
	err := c.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace(Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: name})
	if err != nil {
		return fmt.Errorf("clean up %s: %w", name, err)
	}
	return nil
}

// extreme exports one case and returns what came of it.
func (e *Env) extreme(ctx context.Context, c extremeCase) (string, error) {
	east := e.East
	svc := c.svc(c.name)
	if err := east.API.Client.Create(ctx, svc); err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	for i := 0; i*1000 < c.endpoints; i++ {
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: fmt.Sprintf("%s-%d", c.name[:min(len(c.name), 50)], i),
				Labels: map[string]string{discoveryv1.LabelServiceName: c.name, discoveryv1.LabelManagedBy: "chaos"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("p0"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := i * 1000; j < min(c.endpoints, (i+1)*1000); j++ {
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 200+j>>16, (j>>8)&255, j&255)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		if err := east.API.Client.Create(ctx, sl); err != nil {
			return "", fmt.Errorf("slice %d: %w", i, err)
		}
	}
	if err := east.Export(ctx, Namespace, c.name); err != nil {
		return "", err
	}
	var outcome string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if c.reason != "" {
			var se mcsv1beta1.ServiceExport
			if err := east.API.Client.Get(ctx, keyOf(c.name), &se); err != nil {
				return false, nil //nolint:nilerr // poll again
			}
			v := meta.FindStatusCondition(se.Status.Conditions, string(mcsv1beta1.ServiceExportConditionValid))
			if v == nil || v.Status != metav1.ConditionFalse {
				return false, nil
			}
			if v.Reason != c.reason || v.Message == "" {
				outcome = fmt.Sprintf("refused as %s (%q), want %s", v.Reason, v.Message, c.reason)
				return false, nil
			}
			outcome = fmt.Sprintf("refused: %s: %s", v.Reason, v.Message)
			return true, nil
		}
		mirrors, _, err := held(ctx, e.West)
		if err != nil {
			return false, nil //nolint:nilerr // poll again
		}
		m, ok := mirrors[contract.MirrorName(c.name, "east")]
		if !ok {
			return false, nil
		}
		want := portsOf(svc, true)
		if m.ports != want || !m.ready {
			outcome = fmt.Sprintf("mirror %s, want ports %s ready", m, want)
			return false, nil
		}
		outcome = fmt.Sprintf("imported as %s with ports %s, ready", contract.MirrorName(c.name, "east"), m.ports)
		return true, nil
	})
	if err != nil {
		return "", fmt.Errorf("no outcome as expected (last: %s): %w", outcome, err)
	}
	return outcome, nil
}
