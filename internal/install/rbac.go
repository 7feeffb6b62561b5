package install

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
)

// Scope says whether a rule is granted by a ClusterRole (every namespace)
// or by a Role in ferry-system.
type Scope string

const (
	ClusterWide Scope = "cluster"
	SystemOnly  Scope = contract.SystemNamespace
)

// Rule is one RBAC rule and the reason it exists. docs/rbac.md is generated
// from Rules, and the tests check each rule against an independent list and
// against a real API server's authorizer.
type Rule struct {
	// Subject is the ServiceAccount that holds the rule.
	Subject string
	Scope   Scope
	rbacv1.PolicyRule
	Why string
}

var (
	readOnly  = []string{"get", "list", "watch"}
	readWrite = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

const (
	coreGroup      = ""
	discoveryGroup = "discovery.k8s.io"
	mcsGroup       = "multicluster.x-k8s.io"
	ferryGroup     = "ferry.dev"
	// gatewayAPIGroup is the Gateway API's; routes are optional.
	gatewayAPIGroup = "gateway.networking.k8s.io"
)

func rule(sub string, scope Scope, group string, resources, verbs, names []string, why string) Rule {
	return Rule{Subject: sub, Scope: scope, Why: why, PolicyRule: rbacv1.PolicyRule{
		APIGroups: []string{group}, Resources: resources, Verbs: verbs, ResourceNames: names,
	}}
}

// Rules are every permission Ferry's daemons hold, and nothing else.
func Rules() []Rule {
	c, g := contract.ControllerName, contract.GatewayName
	return []Rule{
		// The controller, cluster-wide: mirrors and clusterset services live
		// in the applications' namespaces, so these cannot be narrowed.
		rule(c, ClusterWide, coreGroup, []string{"services"}, readWrite, nil,
			"Writes mirror Services (`<svc>-<cluster>`) and the Services that carry clusterset IPs, in the exporting Service's namespace (namespace sameness); reads local Services to validate exports. It never touches a Service without Ferry's labels."),
		rule(c, ClusterWide, discoveryGroup, []string{"endpointslices"}, readWrite, nil,
			"Writes the EndpointSlices of mirrors and clusterset services (pointing at the local gateway pods' egress ports); reads the ferry-gateway Service's slices to learn those pods."),
		rule(c, ClusterWide, mcsGroup, []string{"serviceimports"}, readWrite, nil,
			"Writes one ServiceImport per imported `<svc>.<ns>`, as the MCS API specifies."),
		rule(c, ClusterWide, mcsGroup, []string{"serviceimports/status"}, []string{"update", "patch"}, nil,
			"Writes ServiceImport.status: the clusters that currently back the import, and its Ready condition."),
		rule(c, ClusterWide, mcsGroup, []string{"serviceexports"}, readOnly, nil,
			"Reads the local exports to validate them (conflicts, missing Services). Users create and delete exports; the controller never does."),
		rule(c, ClusterWide, mcsGroup, []string{"serviceexports/status"}, []string{"update", "patch"}, nil,
			"Writes the Valid, Conflict and Ready conditions of each export."),
		rule(c, ClusterWide, gatewayAPIGroup, []string{"tcproutes"}, readOnly, nil,
			"Reads the Gateway API TCPRoutes whose parent is a ServiceImport: their backend weights steer the clusterset service. Optional: without the Gateway API CRDs the controller skips them."),
		rule(c, ClusterWide, gatewayAPIGroup, []string{"httproutes"}, readOnly, nil,
			"The same for HTTPRoutes, whose weights apply per connection."),
		rule(c, ClusterWide, gatewayAPIGroup, []string{"tcproutes/status"}, []string{"update", "patch"}, nil,
			"Writes its own entries (controllerName ferry.dev/clusterset) in those routes' status: Accepted and ResolvedRefs. Other controllers' entries are kept."),
		rule(c, ClusterWide, gatewayAPIGroup, []string{"httproutes/status"}, []string{"update", "patch"}, nil,
			"The same for HTTPRoutes."),
		rule(c, ClusterWide, coreGroup, []string{"namespaces"}, readOnly, nil,
			"Mirrors are only written into namespaces that exist locally (namespace sameness); it never creates a namespace."),
		rule(c, ClusterWide, coreGroup, []string{"events"}, []string{"create", "patch"}, nil,
			"Records events on Links, exports and mirrors, e.g. when it refuses to adopt an object without Ferry's labels. patch aggregates repeats."),
		rule(c, ClusterWide, "events.k8s.io", []string{"events"}, []string{"create", "patch"}, nil,
			"The same events through the events.k8s.io/v1 API, which newer recorders (and leader election) use."),

		// The controller, in ferry-system only.
		rule(c, SystemOnly, ferryGroup, []string{"links"}, []string{"get", "list", "watch", "update", "patch"}, nil,
			"Links live in ferry-system. update/patch add and remove the ferry.dev/link-cleanup finalizer; users create and delete Links."),
		rule(c, SystemOnly, ferryGroup, []string{"links/status"}, []string{"update", "patch"}, nil,
			"Writes Link conditions (Connected, Synced, GatewayHealthy) and sync figures."),
		rule(c, SystemOnly, ferryGroup, []string{"links/finalizers"}, []string{"update"}, nil,
			"Needed to set an owner reference with blockOwnerDeletion to a Link when the OwnerReferencesPermissionEnforcement admission plugin is on (controller-runtime's convention)."),
		rule(c, SystemOnly, coreGroup, []string{"secrets"}, readOnly, []string{contract.IssuerSecret},
			"Reads the issuer (intermediate CA and trust bundle) that signs the gateway's and its own leaf certificates, and watches it (by name, with a field selector) so a rotated issuer is used without a restart. It can never change it."),
		rule(c, SystemOnly, coreGroup, []string{"secrets"}, []string{"get", "list", "watch", "update"}, []string{contract.GatewayTLSSecret},
			"Rotates the gateway's leaf certificate in ferry-gateway-tls, and watches it (by name) to repair it if someone else changes it."),
		rule(c, SystemOnly, coreGroup, []string{"secrets"}, []string{"create"}, nil,
			"Creates ferry-gateway-tls on first start. The authorizer cannot restrict create by name (the name is not known until the object is decoded), so this allows creating any Secret in ferry-system, but not reading, changing or deleting any other; see docs/rbac.md."),
		rule(c, SystemOnly, coreGroup, []string{"configmaps"}, []string{"get", "list", "watch", "create", "update"}, nil,
			"Keeps the port claims (ConfigMaps labelled ferry.dev/port-claims): the record of which mirror or clusterset Service holds which egress port. Tenants cannot write ferry-system, so a Service that copies a mirror's labels holds and routes nothing (docs/security.md). Never deletes."),
		rule(c, SystemOnly, "coordination.k8s.io", []string{"leases"}, []string{"get", "update", "patch"}, []string{contract.LeaderElectionID},
			"Leader election on the ferry-controller Lease, so only one replica writes."),
		rule(c, SystemOnly, "coordination.k8s.io", []string{"leases"}, []string{"create"}, nil,
			"Creates the leader-election Lease on first start; create cannot be restricted by name, and only ferry-system is writable."),

		// The gateway: read-only everywhere.
		rule(g, ClusterWide, coreGroup, []string{"services"}, readOnly, nil,
			"Watches mirror Services (labelled ferry.dev/link) to open egress listeners, and exported Services to know their ports."),
		rule(g, ClusterWide, discoveryGroup, []string{"endpointslices"}, readOnly, nil,
			"Picks a ready endpoint of an exported Service for each ingress stream, from EndpointSlices rather than DNS."),
		rule(g, ClusterWide, mcsGroup, []string{"serviceexports"}, readOnly, nil,
			"The local export set: ingress allows only exported Services, to the clusters that ferry.dev/allowed-clusters permits."),
		rule(g, ClusterWide, coreGroup, []string{"namespaces"}, readOnly, nil,
			"Resolves export and mirror namespaces (for example to ignore terminating ones), and reads each namespace's ferry.dev/egress-callers annotation: which other namespaces' pods may use its imports."),
		rule(g, ClusterWide, coreGroup, []string{"pods"}, []string{"list", "watch"}, nil,
			"Tells which namespace an egress caller is in: it keeps each running, non-hostNetwork pod's namespace and IPs (nothing else), indexed by IP. No get: it never reads one pod's spec."),
		rule(g, SystemOnly, ferryGroup, []string{"links"}, readOnly, nil,
			"Finds the remote gateway addresses and identity for an egress connection in the Link named by the mirror's ferry.dev/link label."),
		rule(g, SystemOnly, coreGroup, []string{"configmaps"}, readOnly, nil,
			"Reads the port claims: an egress port opens only for the Service its claim names."),
		// The cluster's DNS (CoreDNS), bound to its own service account
		// (--coredns-service-account).
		rule(CoreDNSRBACName, ClusterWide, mcsGroup, []string{"serviceimports"}, []string{"list", "watch"}, nil,
			"Lets CoreDNS's kubernetes plugin (multicluster clusterset.local) serve <svc>.<ns>.svc.clusterset.local from ServiceImports (docs/dns.md). Read-only, and nothing else the DNS addon does not already read."),
		rule(g, SystemOnly, coreGroup, []string{"secrets"}, readOnly, []string{contract.GatewayTLSSecret},
			"Loads and hot-reloads its leaf certificate and trust bundle. list/watch are authorized by name only with a metadata.name field selector, which the gateway's informer must use."),
	}
}

// rbacObjects turns Rules into one ClusterRole and one Role per subject, and
// their bindings, in a fixed order. CoreDNS's ClusterRole is bound to the
// cluster DNS's service account, outside ferry-system.
func rbacObjects(s spec) []client.Object {
	var out, bindings []client.Object
	for _, scope := range []Scope{ClusterWide, SystemOnly} {
		if scope == SystemOnly {
			// CoreDNS's is cluster-wide too: after the others, before
			// the Roles.
			role, binding := corednsRBAC(s)
			out, bindings = append(out, role), append(bindings, binding)
		}
		for _, sub := range []string{contract.ControllerName, contract.GatewayName} {
			var rules []rbacv1.PolicyRule
			for _, r := range Rules() {
				if r.Subject == sub && r.Scope == scope {
					rules = append(rules, r.PolicyRule)
				}
			}
			component := componentOf(sub)
			subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sub, Namespace: contract.SystemNamespace}}
			if scope == ClusterWide {
				out = append(out, &rbacv1.ClusterRole{
					TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
					ObjectMeta: meta(sub, "", component), Rules: rules,
				})
				bindings = append(bindings, &rbacv1.ClusterRoleBinding{
					TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
					ObjectMeta: meta(sub, "", component), Subjects: subject,
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sub},
				})
				continue
			}
			out = append(out, &rbacv1.Role{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
				ObjectMeta: meta(sub, contract.SystemNamespace, component), Rules: rules,
			})
			bindings = append(bindings, &rbacv1.RoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
				ObjectMeta: meta(sub, contract.SystemNamespace, component), Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sub},
			})
		}
	}
	// Roles before bindings, so a binding never refers to a missing role.
	return append(out, bindings...)
}

func componentOf(sa string) string {
	if sa == contract.GatewayName {
		return "gateway"
	}
	return "controller"
}

// RulesTable is Rules as a Markdown table, for docs/rbac.md.
func RulesTable() string {
	var b strings.Builder
	b.WriteString("| # | ServiceAccount | where | API group | resource | verbs | names | why |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for i, r := range Rules() {
		group := strings.Join(r.APIGroups, ",")
		if group == "" {
			group = "(core)"
		}
		where := "all namespaces (ClusterRole)"
		if r.Subject == CoreDNSRBACName {
			where += ", bound to `--coredns-service-account`"
		}
		if r.Scope == SystemOnly {
			where = "ferry-system (Role)"
		}
		names := strings.Join(r.ResourceNames, ",")
		if names == "" {
			names = "any"
		}
		fmt.Fprintf(&b, "| %d | `%s` | %s | `%s` | `%s` | %s | %s | %s |\n", i+1, r.Subject, where, group,
			strings.Join(r.Resources, ","), strings.Join(r.Verbs, ", "), names, strings.ReplaceAll(r.Why, "|", "\\|"))
	}
	return b.String()
}
