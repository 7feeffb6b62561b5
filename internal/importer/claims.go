package importer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/mirror"
)

// commitClaims records the Link's ports before any object that uses them is
// written, and releases what its gone objects held. A conflict (another
// writer changed the record) fails the reconcile, which runs again on fresh
// state; nothing else is written in between.
func (im *Importer) commitClaims(ctx context.Context, link string, st desiredState) (pending int, _ error) {
	ch, pending := claims.Plan(claims.LinkOwner(link), st.Ports, st.mine, im.serviceGone(ctx))
	if ch.Empty(st.claims) {
		return pending, nil
	}
	if err := claims.Commit(ctx, im.c, im.opts.LinkNamespace, st.claims, ch); err != nil {
		return pending, fmt.Errorf("port claims of link %s: %w", link, err)
	}
	im.metrics.writes.WithLabelValues("ConfigMap", "update", "port-claims").Inc()
	return pending, nil
}

// serviceGone answers claims.Plan from the cache.
func (im *Importer) serviceGone(ctx context.Context) func(mirror.PortKey, int32) bool {
	return func(k mirror.PortKey, egress int32) bool {
		var s corev1.Service
		err := im.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Service}, &s)
		return claims.Gone(&s, err, k, egress)
	}
}
