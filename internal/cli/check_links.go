package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

// maxListed bounds how many objects one check names, so a broken cluster
// with thousands of mirrors still prints a readable line.
const maxListed = 5

func (c *checker) linksHealthy(ctx context.Context) error {
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return err
	}
	var problems []string
	var only *ferryv1.Link
	for i := range links {
		if p := linkStatusProblems(&links[i]); len(p) > 0 {
			problems = append(problems, "link "+links[i].Name+": "+strings.Join(p, ", "))
			only = &links[i]
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err = errors.New(listed(problems))
	// With one bad Link, the controller's own advice is the best hint.
	if len(problems) == 1 && only.Status.Message != "" {
		return withHint(err, "%s", only.Status.Message)
	}
	return err
}

// linkStatusProblems lists what is not right in a Link's status. A Link
// being deleted is on its way out, not broken.
func linkStatusProblems(l *ferryv1.Link) []string {
	if l.DeletionTimestamp != nil {
		return nil
	}
	if len(l.Status.Conditions) == 0 {
		return []string{"no status: the controller has not processed it (is it running?)"}
	}
	var out []string
	if l.Status.ObservedGeneration != 0 && l.Status.ObservedGeneration < l.Generation {
		out = append(out, fmt.Sprintf("status describes generation %d, the spec is at %d", l.Status.ObservedGeneration, l.Generation))
	}
	for _, typ := range []string{ferryv1.LinkConnected, ferryv1.LinkSynced, ferryv1.LinkGatewayHealthy} {
		cond := meta.FindStatusCondition(l.Status.Conditions, typ)
		switch {
		case cond == nil:
			out = append(out, typ+" not reported")
		case typ == ferryv1.LinkSynced && waitsForNamespaces(cond):
			// linksWaitForNamespaces warns about it: not a failure.
		case cond.Status != metav1.ConditionTrue:
			out = append(out, fmt.Sprintf("%s=%s (%s)", typ, cond.Status, cond.Reason))
		}
	}
	return out
}

// waitsForNamespaces says that a Link's only sync problem is exports in
// namespaces this cluster does not have. The importer never creates a
// namespace (namespace sameness), and an importer that does not want a
// namespace an exporter added is working as intended, so this is a warning:
// were it fatal, every new namespace on an exporter would fail every
// importer's check. The importer names NamespaceMissing only when nothing
// that needs an operator (a name clash, a full port range) is also wrong.
func waitsForNamespaces(synced *metav1.Condition) bool {
	return synced.Status == metav1.ConditionFalse && synced.Reason == string(mirror.NamespaceMissing)
}

func (c *checker) linksWaitForNamespaces(ctx context.Context) error {
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return err
	}
	var problems []string
	for _, l := range links {
		if l.DeletionTimestamp != nil {
			continue
		}
		if cond := meta.FindStatusCondition(l.Status.Conditions, ferryv1.LinkSynced); cond != nil && waitsForNamespaces(cond) {
			problems = append(problems, "link "+l.Name+": "+cond.Message)
		}
	}
	if len(problems) > 0 {
		return errors.New(listed(problems))
	}
	return nil
}

func (c *checker) linkIdentities(ctx context.Context) error {
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return err
	}
	loc := c.local(ctx)
	var problems []string
	for i := range links {
		if p := linkIdentityProblem(&links[i], loc); p != "" {
			problems = append(problems, "link "+links[i].Name+": "+p)
		}
	}
	if len(problems) > 0 {
		return errors.New(listed(problems))
	}
	return nil
}

// linkIdentityProblem checks the identity a Link expects of the remote
// gateway: a gateway identity of the remote cluster, in our mesh. The
// importer verifies the remote's chain against our trust bundle and this
// identity on every connection (Connected says whether that succeeded);
// this catches a Link that could never connect, or would trust the wrong
// workload.
//
// The rule is the importer's and the gateway's (contract.LinkGatewayID); an
// unknown local mesh (no readable bundle) checks the Link on its own.
func linkIdentityProblem(l *ferryv1.Link, loc localIdentity) string {
	id, err := contract.LinkGatewayID(l.Spec.GatewayIdentity, l.Spec.ClusterName, loc.mesh)
	switch {
	case err != nil:
		return err.Error()
	case loc.cluster != "" && id.Cluster == loc.cluster:
		return fmt.Sprintf("links this cluster (%s) to itself", loc.cluster)
	}
	return ""
}

// linkNames maps each existing Link to whether it is being deleted.
func (c *checker) linkNames(ctx context.Context) (map[string]bool, error) {
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(links))
	for _, l := range links {
		m[l.Name] = l.DeletionTimestamp != nil
	}
	return m, nil
}

// mirrors lists Services that Ferry owns (both ownership labels), in all
// namespaces.
func (c *checker) mirrors(ctx context.Context) ([]corev1.Service, error) {
	var list corev1.ServiceList
	if err := c.k.Client.List(ctx, &list, client.HasLabels{contract.LabelLink, contract.LabelSourceCluster}); err != nil {
		return nil, c.k.explain("list mirror Services", err)
	}
	return list.Items, nil
}

// mirrorsHaveEndpoints: a mirror without an EndpointSlice, or with an empty
// one, blackholes its clients. Endpoints that are not ready are by design
// (the remote is unhealthy) and the Link check reports that.
func (c *checker) mirrorsHaveEndpoints(ctx context.Context) error {
	links, err := c.linkNames(ctx)
	if err != nil {
		return err
	}
	mirrors, err := c.mirrors(ctx)
	if err != nil {
		return err
	}
	var sliceList discoveryv1.EndpointSliceList
	if err := c.k.Client.List(ctx, &sliceList, client.HasLabels{contract.LabelLink}); err != nil {
		return c.k.explain("list mirror EndpointSlices", err)
	}
	endpoints := map[string]int{} // namespace/service -> endpoints
	hasSlice := map[string]bool{}
	for _, s := range sliceList.Items {
		key := s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
		hasSlice[key] = true
		endpoints[key] += len(s.Endpoints)
	}
	var problems []string
	for _, m := range mirrors {
		deleting, ok := links[m.Labels[contract.LabelLink]]
		if !ok || deleting {
			continue // orphans and Links on their way out are not expected to be served
		}
		key := m.Namespace + "/" + m.Name
		switch {
		case !hasSlice[key]:
			problems = append(problems, key+" has no EndpointSlice")
		case endpoints[key] == 0:
			problems = append(problems, key+" has no endpoints")
		}
	}
	if len(problems) > 0 {
		return errors.New(listed(problems))
	}
	return nil
}

func (c *checker) noOrphans(ctx context.Context) error {
	links, err := c.linkNames(ctx)
	if err != nil {
		return err
	}
	owned, err := ownedObjects(ctx, c.k, "")
	if err != nil {
		return err
	}
	var problems []string
	gone := map[string]bool{}
	for _, o := range owned {
		if _, ok := links[o.Link]; !ok {
			problems = append(problems, fmt.Sprintf("%s %s/%s (link %s)", o.Kind, o.Namespace, o.Name, o.Link))
			gone[o.Link] = true
		}
	}
	if len(problems) == 0 {
		return nil
	}
	var sels []string
	for l := range gone {
		sels = append(sels, fmt.Sprintf("`kubectl delete svc,endpointslices,serviceimports -A -l %s=%s,%s`", contract.LabelLink, l, contract.LabelSourceCluster))
	}
	slices.Sort(sels)
	return withHint(fmt.Errorf("the owning Link does not exist for %s: %s", plural(len(problems), "object"), listed(problems)),
		"their Link was removed without its finalizer running, so nothing will delete them: %s", strings.Join(sels, "; "))
}

// noForgedMirrors lists Services that carry a Link's ownership labels but
// that the controller would never have written (forgedMirrorProblems).
func (c *checker) noForgedMirrors(ctx context.Context) error {
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return err
	}
	mirrors, err := c.mirrors(ctx)
	if err != nil {
		return err
	}
	snap, err := claims.Read(ctx, c.k.Client, contract.SystemNamespace)
	if err != nil {
		return c.k.explain("read the port claims", err)
	}
	p := forgedMirrorProblems(mirrors, links, snap.Table)
	for first, err := range snap.Broken {
		p = append(p, fmt.Sprintf("%s does not decode (%v): its ports route nothing", contract.PortClaimsName(first), err))
	}
	if len(p) > 0 {
		return fmt.Errorf("%s that Ferry did not write: %s", plural(len(p), "mirror-looking Service"), listed(p))
	}
	return nil
}

// forgedMirrorProblems finds mirror-looking Services (both ownership
// labels) that the controller did not write: every port of a mirror is
// claimed for it in the port claims (the record only the controller
// writes), and a mirror is named contract.MirrorName(remote service,
// cluster), names its remote service, and stands for the cluster its Link
// names. Objects of Links that do not exist are orphans, reported by
// noOrphans. A mirror-looking Service kept Terminating by another
// controller's finalizer is reported too: Ferry's mirrors carry no
// finalizer (docs/security.md, finding 1). Such Services route and hold
// nothing; the finding is for the operator to remove them.
func forgedMirrorProblems(mirrors []corev1.Service, links []ferryv1.Link, claimed claims.Table) []string {
	clusterOf := map[string]string{}
	for _, l := range links {
		clusterOf[l.Name] = l.Spec.ClusterName
	}
	// A headless mirror holds no port: a claimed host mirror of its
	// service vouches for it (docs/headless.md).
	hosted := map[mirror.Hosted]bool{}
	for _, m := range mirrors {
		if _, isHost := mirror.Hostname(&m); isHost && claimed.Vouches(&m, claims.LinkOwner(m.Labels[contract.LabelLink])) {
			hosted[mirror.HostedOf(&m)] = true
		}
	}
	anyPort := contract.Range{Min: 1, Max: 65535} // ranges are egressPorts' check
	var out []string
	for _, m := range mirrors {
		link, cluster := m.Labels[contract.LabelLink], m.Labels[contract.LabelSourceCluster]
		want, linked := clusterOf[link]
		if !linked {
			continue
		}
		remote := m.Annotations[contract.AnnotationRemoteService]
		where := m.Namespace + "/" + m.Name
		read, readProblems, readOK := mirror.Read(&m, anyPort)
		switch {
		case cluster != want:
			out = append(out, fmt.Sprintf("%s claims cluster %q, but Link %s is to %q", where, cluster, link, want))
		case remote == "":
			out = append(out, fmt.Sprintf("%s has no %s annotation", where, contract.AnnotationRemoteService))
		case !readOK:
			// Named for another service or pod than it says, or not
			// decodable: the contract reader says how.
			out = append(out, errors.Join(readProblems...).Error())
		case m.DeletionTimestamp != nil && len(m.Finalizers) > 0:
			out = append(out, fmt.Sprintf("%s is kept from deletion by finalizers %s", where, strings.Join(m.Finalizers, ", ")))
		case read.Headless:
			if !hosted[mirror.HostedOf(&m)] {
				out = append(out, fmt.Sprintf("%s is headless, and no claimed host mirror of %s stands for one of its pods", where, remote))
			}
		default:
			var unclaimed []string
			for _, p := range m.Spec.Ports {
				c := claims.Claim{Owner: claims.LinkOwner(link), Namespace: m.Namespace, Service: m.Name, Port: p.Port}
				if p.TargetPort.StrVal != "" || !claimed.Holds(p.TargetPort.IntVal, c) {
					unclaimed = append(unclaimed, strconv.Itoa(int(p.Port)))
				}
			}
			if len(unclaimed) > 0 {
				out = append(out, fmt.Sprintf("%s has no port claim for port %s", where, strings.Join(unclaimed, ", ")))
			}
		}
	}
	slices.Sort(out)
	return out
}

// egressPorts checks the allocations recorded on mirrors (docs/contracts.md):
// the gateway listens on each targetPort on its pod IP, so two mirrors with
// one port collide, and a port outside the range may clash with something
// else on the pod.
func (c *checker) egressPorts(ctx context.Context) error {
	r := controllerArgs(ctx, c.k)["egress-port-range"]
	if r == "" {
		r = contract.DefaultEgressRange().String()
	}
	rg, err := contract.ParseRange(r)
	if err != nil {
		return fmt.Errorf("the controller's --egress-port-range: %w", err)
	}
	mirrors, err := c.mirrors(ctx)
	if err != nil {
		return err
	}
	if p := egressPortProblems(mirrors, rg.Min, rg.Max); len(p) > 0 {
		return errors.New(listed(p))
	}
	return nil
}

func egressPortProblems(mirrors []corev1.Service, first, last int32) []string {
	users := map[int32][]string{}
	var ports []int32
	var out []string
	for _, m := range mirrors {
		if m.Spec.ClusterIP == corev1.ClusterIPNone {
			continue // a headless mirror's pods have the egress ports (docs/headless.md)
		}
		for _, p := range m.Spec.Ports {
			where := fmt.Sprintf("%s/%s:%d", m.Namespace, m.Name, p.Port)
			tp := p.TargetPort
			if tp.StrVal != "" || tp.IntVal == 0 {
				out = append(out, fmt.Sprintf("%s has targetPort %q, not an allocated egress port", where, tp.String()))
				continue
			}
			if tp.IntVal < first || tp.IntVal > last {
				out = append(out, fmt.Sprintf("%s uses egress port %d, outside %d-%d", where, tp.IntVal, first, last))
			}
			if users[tp.IntVal] == nil {
				ports = append(ports, tp.IntVal)
			}
			users[tp.IntVal] = append(users[tp.IntVal], where)
		}
	}
	slices.Sort(ports)
	for _, p := range ports {
		if u := users[p]; len(u) > 1 {
			out = append(out, fmt.Sprintf("egress port %d is used by %s", p, strings.Join(u, " and ")))
		}
	}
	return out
}

// listed joins problems into one line, naming at most maxListed of them.
func listed(problems []string) string {
	if len(problems) <= maxListed {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(problems[:maxListed], "; "), len(problems)-maxListed)
}
