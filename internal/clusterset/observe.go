package clusterset

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/steering"
)

// shared is what every pass reads whole: the claims, the Links, the
// gateway's addresses and the routes. basis is the part every clusterset
// service depends on: when it changes, the pass is full.
type shared struct {
	snap    claims.Snapshot
	linked  map[string]bool
	gateway []string
	routes  steering.Routes
	local   bool // this cluster's own export set is synced
	basis   string
}

func (r *Reconciler) observeShared(ctx context.Context) (shared, error) {
	var sh shared
	snap, err := r.claims.Read(ctx, r.c, r.opts.ClaimsNamespace)
	if err != nil {
		return sh, err
	}
	sh.snap = snap
	var links ferryv1.LinkList
	if err := r.c.List(ctx, &links, client.InNamespace(r.opts.ClaimsNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return sh, fmt.Errorf("list links: %w", err)
	}
	sh.linked = make(map[string]bool, len(links.Items))
	for _, l := range links.Items {
		sh.linked[l.Name] = true
	}
	var gwSlices discoveryv1.EndpointSliceList
	if err := r.c.List(ctx, &gwSlices, client.InNamespace(r.opts.Gateway.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: r.opts.Gateway.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return sh, fmt.Errorf("list gateway endpoints: %w", err)
	}
	for _, s := range gwSlices.Items {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) && !ptr.Deref(ep.Conditions.Terminating, false) {
				sh.gateway = append(sh.gateway, ep.Addresses...)
			}
		}
	}
	if sh.routes, err = listRoutes(ctx, r.c, r.routes); err != nil {
		return sh, err
	}
	if r.opts.LocalExports != nil {
		cur := r.opts.LocalExports.Current()
		sh.local = cur != nil && cur.Synced
	}
	sh.basis = strings.Join(sh.gateway, ",") + "|" + strconv.FormatBool(sh.local)
	return sh, nil
}

// fill completes a pass's input with what every pass shares, and keeps
// only the mirrors the claims vouch for. A scoped pass (keys not nil) reads
// only its keys' claims, and the others through a view of the record.
func (sh shared) fill(in *Input, have *Objects, keys []Key) {
	if keys == nil {
		in.Taken, in.Claimed = claims.Split(sh.snap, claims.Clusterset)
	} else {
		names := make(map[string]bool, len(keys))
		scope := make([]claims.ServiceName, 0, len(keys))
		for _, k := range keys {
			n := contract.ClustersetName(k.Service)
			names[k.Namespace+"/"+n] = true
			scope = append(scope, claims.ServiceName{Namespace: k.Namespace, Name: n})
		}
		in.Taken, in.Claimed = sh.snap.View(claims.Clusterset, scope, func(ns, svc string) bool { return names[ns+"/"+svc] })
	}
	in.Mirrors = claimedMirrors(in.Mirrors, sh.snap, sh.linked)
	in.Gateway = sh.gateway
	in.Routes, have.Routes = sh.routes, sh.routes
	in.Affinity = map[Key]string{}
	for _, si := range have.Imports {
		if a := si.Annotations[contract.AnnotationAffinity]; a != "" {
			in.Affinity[Key{Namespace: si.Namespace, Service: si.Name}] = a
		}
	}
}

// observeAll reads every mirror and clusterset object from the cache.
// Only mirrors whose every port the claims vouch for count (fill): a
// tenant's copy of a mirror's labels must not put a cluster into a
// ServiceImport.
func (r *Reconciler) observeAll(ctx context.Context) (Input, Objects, error) {
	in := Input{Ports: r.opts.Ports}
	var have Objects
	if r.opts.LocalExports != nil {
		if cur := r.opts.LocalExports.Current(); cur != nil && cur.Synced {
			in.LocalCluster, in.Local = r.opts.LocalCluster, cur.Map()
		}
	}
	mirrored := client.HasLabels{contract.LabelLink, contract.LabelSourceCluster}
	mine := client.HasLabels{contract.LabelClusterset}
	var mirrors, current corev1.ServiceList
	var mirrorSlices, ownSlices discoveryv1.EndpointSliceList
	var imports mcsv1beta1.ServiceImportList
	for _, l := range []struct {
		what string
		list client.ObjectList
		opts []client.ListOption
	}{
		{"mirrors", &mirrors, []client.ListOption{mirrored}},
		{"mirror slices", &mirrorSlices, []client.ListOption{mirrored}},
		{"clusterset services", &current, []client.ListOption{mine}},
		{"clusterset slices", &ownSlices, []client.ListOption{mine}},
		{"service imports", &imports, []client.ListOption{mine}},
	} {
		// The objects are the cache's own: never modified (Diff copies).
		if err := r.c.List(ctx, l.list, append(l.opts, client.UnsafeDisableDeepCopy)...); err != nil {
			return in, have, fmt.Errorf("list %s: %w", l.what, err)
		}
	}
	in.Mirrors = pointers(mirrors.Items)
	in.MirrorSlices = pointers(mirrorSlices.Items)
	in.Current = pointers(current.Items)
	have.Services = in.Current
	have.Slices = pointers(ownSlices.Items)
	have.Imports = pointers(imports.Items)
	return in, have, nil
}

// claimedMirrors keeps the mirrors whose every port the claims hold for
// them (owner: the Link their label names), and those of existing Links
// that hold no claim at all: an install from before the claims, whose
// importer writes them only once the Link's feed has synced. Dropping those
// mirrors would delete and re-create every clusterset Service and
// ServiceImport (new ClusterIPs) on upgrade. A forged mirror counted that
// way gains no route (the gateway sends clusterset traffic only to claimed
// mirrors' clusters) and drops out at the Link's first sync; one that names
// no existing Link never counts. A headless mirror holds no port: it counts
// when a claimed host mirror of the same Link and service does
// (docs/headless.md).
func claimedMirrors(svcs []*corev1.Service, snap claims.Snapshot, links map[string]bool) []*corev1.Service {
	t := snap.Table
	out := svcs[:0:0]
	// A headless mirror holds no port: its host mirrors vouch for it.
	hosted := map[mirror.Hosted]bool{}
	var headless []*corev1.Service
	for _, s := range svcs {
		link, ok := mirror.OwnerOf(s)
		if !ok {
			continue
		}
		owner := claims.LinkOwner(link)
		switch {
		case s.Spec.ClusterIP == corev1.ClusterIPNone:
			headless = append(headless, s)
		case t.Vouches(s, owner):
			out = append(out, s)
			if _, isHost := mirror.Hostname(s); isHost {
				hosted[mirror.HostedOf(s)] = true
			}
		case links[link] && !snap.HasOwner(owner):
			out = append(out, s)
		}
	}
	for _, s := range headless {
		if hosted[mirror.HostedOf(s)] {
			out = append(out, s)
		}
	}
	return out
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
