package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// The independent checker. It computes what west must hold in Namespace
// from the exporters' objects alone, with none of Ferry's code: a
// ServiceExport whose Service exists, is not ExternalName and has a TCP
// port is imported as "<name>-<cluster>" with the same ports, ready when
// the exported Service has a ready endpoint; and every name exported so,
// by a linked cluster or by west itself, has a ServiceImport. It compares
// that with what west's API server holds.

// mirrorState is what the checker compares of one mirror.
type mirrorState struct {
	ports string // sorted "TCP/80,TCP/81"
	ready bool
}

func (m mirrorState) String() string { return fmt.Sprintf("ports %s ready %t", m.ports, m.ready) }

// hasReady says whether any of the Service's slices in c has a ready
// endpoint.
func hasReady(ctx context.Context, c *sandbox.Cluster, svc string) (bool, error) {
	var sl discoveryv1.EndpointSliceList
	if err := c.API.Client.List(ctx, &sl, client.InNamespace(Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return false, fmt.Errorf("%s: slices of %s: %w", c.Name, svc, err)
	}
	for _, s := range sl.Items {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				return true, nil
			}
		}
	}
	return false, nil
}

func portsOf(svc *corev1.Service, tcpOnly bool) string {
	var ps []string
	for _, p := range svc.Spec.Ports {
		if tcpOnly && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		ps = append(ps, string(p.Protocol)+"/"+strconv.Itoa(int(p.Port)))
	}
	slices.Sort(ps)
	return fmt.Sprint(ps)
}

// desired is what the importer must hold: mirrors of the remotes' exports
// by name, and the names that need a ServiceImport, the local cluster's
// own exports included.
func desired(ctx context.Context, remotes []*sandbox.Cluster, local *sandbox.Cluster) (map[string]mirrorState, map[string]bool, error) {
	mirrors, imports := map[string]mirrorState{}, map[string]bool{}
	for _, c := range append(slices.Clone(remotes), local) {
		var ses mcsv1beta1.ServiceExportList
		if err := c.API.Client.List(ctx, &ses, client.InNamespace(Namespace)); err != nil {
			return nil, nil, fmt.Errorf("%s: serviceexports: %w", c.Name, err)
		}
		for _, se := range ses.Items {
			if se.DeletionTimestamp != nil {
				continue
			}
			var svc corev1.Service
			if err := c.API.Client.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: se.Name}, &svc); err != nil {
				continue // not found: nothing to import
			}
			ports := portsOf(&svc, true)
			if svc.Spec.Type == corev1.ServiceTypeExternalName || ports == "[]" {
				continue
			}
			ready, err := hasReady(ctx, c, se.Name)
			if err != nil {
				return nil, nil, err
			}
			imports[se.Name] = true
			if c != local {
				mirrors[contract.MirrorName(se.Name, c.Name)] = mirrorState{ports: ports, ready: ready}
			}
		}
	}
	return mirrors, imports, nil
}

// held is what west holds: the Services a Link owns, and the ServiceImports.
func held(ctx context.Context, west *sandbox.Cluster) (map[string]mirrorState, map[string]bool, error) {
	var svcs corev1.ServiceList
	if err := west.API.Client.List(ctx, &svcs, client.InNamespace(Namespace), client.HasLabels{contract.LabelLink}); err != nil {
		return nil, nil, fmt.Errorf("west: mirrors: %w", err)
	}
	mirrors := map[string]mirrorState{}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		ready, err := hasReady(ctx, west, s.Name)
		if err != nil {
			return nil, nil, err
		}
		mirrors[s.Name] = mirrorState{ports: portsOf(s, false), ready: ready}
	}
	var sis mcsv1beta1.ServiceImportList
	if err := west.API.Client.List(ctx, &sis, client.InNamespace(Namespace)); err != nil {
		return nil, nil, fmt.Errorf("west: serviceimports: %w", err)
	}
	imports := map[string]bool{}
	for _, si := range sis.Items {
		imports[si.Name] = true
	}
	return mirrors, imports, nil
}

// Check compares west with what the exporters' objects say it must hold,
// and returns every difference (none when they agree).
func (e *Env) Check(ctx context.Context) ([]string, error) {
	wantM, wantI, err := desired(ctx, []*sandbox.Cluster{e.East, e.North}, e.West)
	if err != nil {
		return nil, err
	}
	haveM, haveI, err := held(ctx, e.West)
	if err != nil {
		return nil, err
	}
	return compare(wantM, wantI, haveM, haveI), nil
}

// compare lists every difference between what west must hold and what it
// holds.
func compare(wantM map[string]mirrorState, wantI map[string]bool, haveM map[string]mirrorState, haveI map[string]bool) []string {
	var diffs []string
	for _, n := range slices.Sorted(maps.Keys(wantM)) {
		h, ok := haveM[n]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("mirror %s missing (want %s)", n, wantM[n]))
		case h != wantM[n]:
			diffs = append(diffs, fmt.Sprintf("mirror %s: %s, want %s", n, h, wantM[n]))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(haveM)) {
		if _, ok := wantM[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("mirror %s held but not exported", n))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(wantI)) {
		if !haveI[n] {
			diffs = append(diffs, fmt.Sprintf("ServiceImport %s missing", n))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(haveI)) {
		if !wantI[n] {
			diffs = append(diffs, fmt.Sprintf("ServiceImport %s held but exported nowhere", n))
		}
	}
	return diffs
}
