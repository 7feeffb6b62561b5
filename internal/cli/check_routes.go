package cli

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/steering"
)

// routesAccepted fails when a route whose parent is a ServiceImport is not
// accepted by Ferry, or not yet processed. Without the Gateway API CRDs
// there is nothing to check.
func (c *checker) routesAccepted(ctx context.Context) error {
	var problems []string
	served := false
	note := func(kind, ns, name string, generation int64, parents []gwv1.RouteParentStatus, refs []gwv1.ParentReference) {
		for _, ref := range refs {
			if ref.Group == nil || string(*ref.Group) != steering.ParentGroup || ref.Kind == nil || string(*ref.Kind) != steering.ParentKind {
				continue
			}
			var accepted *metav1.Condition
			for _, p := range parents {
				if string(p.ControllerName) == contract.GatewayControllerName && p.ParentRef.Name == ref.Name {
					accepted = meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
				}
			}
			where := fmt.Sprintf("%s %s/%s (parent ServiceImport %s)", kind, ns, name, ref.Name)
			switch {
			case accepted == nil || accepted.ObservedGeneration < generation:
				problems = append(problems, where+": not processed yet (is the controller running?)")
			case accepted.Status != metav1.ConditionTrue:
				problems = append(problems, fmt.Sprintf("%s: %s: %s", where, accepted.Reason, accepted.Message))
			}
		}
	}
	var tcp gwv1.TCPRouteList
	switch err := c.k.Client.List(ctx, &tcp); {
	case err == nil:
		served = true
		for _, r := range tcp.Items {
			note(steering.KindTCPRoute, r.Namespace, r.Name, r.Generation, r.Status.Parents, r.Spec.ParentRefs)
		}
	case !meta.IsNoMatchError(err):
		return c.k.explain("list TCPRoutes", err)
	}
	var http gwv1.HTTPRouteList
	switch err := c.k.Client.List(ctx, &http); {
	case err == nil:
		served = true
		for _, r := range http.Items {
			note(steering.KindHTTPRoute, r.Namespace, r.Name, r.Generation, r.Status.Parents, r.Spec.ParentRefs)
		}
	case !meta.IsNoMatchError(err):
		return c.k.explain("list HTTPRoutes", err)
	}
	if !served {
		return skipf("the Gateway API route CRDs are not installed: clusterset services take the default split")
	}
	if len(problems) > 0 {
		return errors.New(listed(problems))
	}
	return nil
}
