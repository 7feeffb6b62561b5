package install

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"ferry.dev/ferry/internal/contract"
)

// wantRule is written out by hand, independently of Rules(): each row is a
// golden test for one rule, and a rule that is added, widened or dropped
// fails here until a reviewer updates this list and docs/rbac.md.
type wantRule struct {
	sa, scope, group, resource, verbs, names string
}

const (
	ctl = "ferry-controller"
	gw  = "ferry-gateway"
	cw  = "cluster"
	sys = "ferry-system"
	rw  = "get,list,watch,create,update,patch,delete"
	ro  = "get,list,watch"
)

var wantRules = []wantRule{
	{"ferry-coredns", cw, "multicluster.x-k8s.io", "serviceimports", "list,watch", ""},
	{ctl, cw, "", "services", rw, ""},
	{ctl, cw, "discovery.k8s.io", "endpointslices", rw, ""},
	{ctl, cw, "multicluster.x-k8s.io", "serviceimports", rw, ""},
	{ctl, cw, "multicluster.x-k8s.io", "serviceimports/status", "update,patch", ""},
	{ctl, cw, "multicluster.x-k8s.io", "serviceexports", ro, ""},
	{ctl, cw, "multicluster.x-k8s.io", "serviceexports/status", "update,patch", ""},
	{ctl, cw, "gateway.networking.k8s.io", "tcproutes", ro, ""},
	{ctl, cw, "gateway.networking.k8s.io", "httproutes", ro, ""},
	{ctl, cw, "gateway.networking.k8s.io", "tcproutes/status", "update,patch", ""},
	{ctl, cw, "gateway.networking.k8s.io", "httproutes/status", "update,patch", ""},
	{ctl, cw, "", "namespaces", ro, ""},
	{ctl, cw, "", "events", "create,patch", ""},
	{ctl, cw, "events.k8s.io", "events", "create,patch", ""},
	{ctl, sys, "ferry.dev", "links", "get,list,watch,update,patch", ""},
	{ctl, sys, "ferry.dev", "links/status", "update,patch", ""},
	{ctl, sys, "ferry.dev", "links/finalizers", "update", ""},
	{ctl, sys, "", "secrets", ro, "ferry-issuer"},
	{ctl, sys, "", "secrets", "get,list,watch,update", "ferry-gateway-tls"},
	{ctl, sys, "", "secrets", "create", ""},
	{ctl, sys, "", "configmaps", "get,list,watch,create,update", ""},
	{ctl, sys, "coordination.k8s.io", "leases", "get,update,patch", "ferry-controller"},
	{ctl, sys, "coordination.k8s.io", "leases", "create", ""},
	{gw, cw, "", "services", ro, ""},
	{gw, cw, "discovery.k8s.io", "endpointslices", ro, ""},
	{gw, cw, "multicluster.x-k8s.io", "serviceexports", ro, ""},
	{gw, cw, "", "namespaces", ro, ""},
	{gw, cw, "", "pods", "list,watch", ""},
	{gw, sys, "ferry.dev", "links", ro, ""},
	{gw, sys, "", "configmaps", ro, ""},
	{gw, sys, "", "secrets", ro, "ferry-gateway-tls"},
}

func (w wantRule) String() string {
	return fmt.Sprintf("%s/%s/%s:%s[%s]{%s}", w.sa, w.scope, w.group, w.resource, w.verbs, w.names)
}

func asWant(r Rule) wantRule {
	if len(r.APIGroups) != 1 || len(r.Resources) != 1 {
		return wantRule{sa: "rule with several groups or resources: split it"}
	}
	return wantRule{r.Subject, string(r.Scope), r.APIGroups[0], r.Resources[0], strings.Join(r.Verbs, ","), strings.Join(r.ResourceNames, ",")}
}

func TestRBACRules(t *testing.T) {
	var got []wantRule
	for _, r := range Rules() {
		got = append(got, asWant(r))
		if strings.TrimSpace(r.Why) == "" {
			t.Errorf("rule %s has no Why", asWant(r))
		}
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("rule %s uses a wildcard", asWant(r))
		}
	}
	for _, w := range wantRules {
		t.Run(w.String(), func(t *testing.T) {
			if !slices.Contains(got, w) {
				t.Errorf("missing or changed rule %s", w)
			}
		})
	}
	for _, g := range got {
		if !slices.Contains(wantRules, g) {
			t.Errorf("unexpected rule %s: add it to wantRules and docs/rbac.md with a reason", g)
		}
	}
}

// TestRBACObjects checks that Rules become exactly the rendered Roles and
// ClusterRoles, bound to the right ServiceAccounts.
func TestRBACObjects(t *testing.T) {
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			n += len(o.Rules)
			checkRoleRules(t, o.Name, ClusterWide, o.Rules)
		case *rbacv1.Role:
			n += len(o.Rules)
			if o.Namespace != contract.SystemNamespace {
				t.Errorf("Role %s in namespace %q", o.Name, o.Namespace)
			}
			checkRoleRules(t, o.Name, SystemOnly, o.Rules)
		case *rbacv1.ClusterRoleBinding:
			checkBinding(t, o.Name, o.RoleRef, "ClusterRole", o.Subjects)
		case *rbacv1.RoleBinding:
			checkBinding(t, o.Name, o.RoleRef, "Role", o.Subjects)
		}
	}
	if n != len(wantRules) {
		t.Errorf("rendered %d rules, want %d", n, len(wantRules))
	}
}

func checkRoleRules(t *testing.T, sa string, scope Scope, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		w := asWant(Rule{Subject: sa, Scope: scope, PolicyRule: r})
		if !slices.Contains(wantRules, w) {
			t.Errorf("role %s (%s) has unexpected rule %s", sa, scope, w)
		}
	}
}

func checkBinding(t *testing.T, name string, ref rbacv1.RoleRef, kind string, subs []rbacv1.Subject) {
	t.Helper()
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: contract.SystemNamespace}
	if name == CoreDNSRBACName {
		ns, sa, _ := strings.Cut(DefaultCoreDNSServiceAccount, "/")
		want = rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: ns}
	}
	if ref.Kind != kind || ref.Name != name || len(subs) != 1 || subs[0] != want {
		t.Errorf("%sBinding %s: roleRef %+v subjects %+v", kind, name, ref, subs)
	}
}

// access is one SubjectAccessReview question and its expected answer.
type access struct {
	sa, verb, group, resource, sub, ns, name string
	allowed                                  bool
}

// TestRBACAuthorizer asks the real API server's authorizer, after a real
// install: everything in wantRules is allowed, and the near misses that
// least privilege exists to refuse are denied.
func TestRBACAuthorizer(t *testing.T) {
	c := installed(t)
	ctx := t.Context()
	var qs []access
	for _, w := range wantRules {
		res, sub, _ := strings.Cut(w.resource, "/")
		ns := "app"
		if w.scope == sys {
			ns = sys
		} else if res == "namespaces" {
			ns = ""
		}
		for _, verb := range strings.Split(w.verbs, ",") {
			name := w.names
			if name == "" && verb != "list" && verb != "watch" && verb != "create" {
				name = "any-name"
			}
			qs = append(qs, access{w.sa, verb, w.group, res, sub, ns, name, true})
		}
	}
	deny := func(sa, verb, group, resource, ns, name string) {
		qs = append(qs, access{sa, verb, group, resource, "", ns, name, false})
	}
	for _, sa := range []string{ctl, gw} {
		deny(sa, "get", "", "secrets", sys, "other")
		deny(sa, "list", "", "secrets", sys, "")
		deny(sa, "get", "", "secrets", "app", "ferry-gateway-tls")
		deny(sa, "delete", "", "secrets", sys, "ferry-gateway-tls")
		deny(sa, "get", "ferry.dev", "links", "app", "x")
		deny(sa, "create", "ferry.dev", "links", sys, "")
		deny(sa, "delete", "ferry.dev", "links", sys, "x")
		deny(sa, "create", "multicluster.x-k8s.io", "serviceexports", "app", "")
		deny(sa, "delete", "multicluster.x-k8s.io", "serviceexports", "app", "x")
		deny(sa, "create", "", "namespaces", "", "")
		deny(sa, "get", "", "pods", "app", "x")
		deny(sa, "get", "", "configmaps", "app", "x")
		deny(sa, "delete", "", "configmaps", sys, "ferry-ports-10000")
		deny(sa, "update", "apps", "deployments", sys, "ferry-gateway")
		deny(sa, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", "x")
		deny(sa, "create", "", "serviceaccounts/token", sys, "ferry-gateway")
	}
	deny(ctl, "update", "", "secrets", sys, "ferry-issuer")
	deny(ctl, "update", "coordination.k8s.io", "leases", sys, "other")
	deny(ctl, "create", "coordination.k8s.io", "leases", "kube-system", "")
	deny(gw, "get", "", "secrets", sys, "ferry-issuer")
	deny(gw, "update", "", "secrets", sys, "ferry-gateway-tls")
	deny(ctl, "patch", "", "secrets", sys, "ferry-gateway-tls")
	deny(ctl, "list", "", "pods", "app", "")
	deny(gw, "update", "", "namespaces", "", "app")
	deny(gw, "create", "", "services", "app", "")
	deny(gw, "create", "discovery.k8s.io", "endpointslices", "app", "")
	deny(gw, "update", "ferry.dev", "links", sys, "x")
	deny(gw, "create", "", "events", "app", "")
	deny(gw, "get", "coordination.k8s.io", "leases", sys, "ferry-controller")
	deny(gw, "update", "", "configmaps", sys, "ferry-ports-10000")
	deny("default", "get", "", "services", "app", "x")
	deny(CoreDNSRBACName, "create", "multicluster.x-k8s.io", "serviceimports", "app", "")
	deny(CoreDNSRBACName, "list", "multicluster.x-k8s.io", "serviceexports", "app", "")
	deny(CoreDNSRBACName, "get", "", "secrets", "app", "x")

	for _, q := range qs {
		ns, sa := contract.SystemNamespace, q.sa
		if q.sa == CoreDNSRBACName {
			// Bound to the cluster DNS's own service account.
			ns, sa, _ = strings.Cut(DefaultCoreDNSServiceAccount, "/")
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + ns + ":" + sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: q.ns, Verb: q.verb, Group: q.group, Resource: q.resource, Subresource: q.sub, Name: q.name,
			},
		}}
		if err := c.Client.Create(ctx, sar); err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		if sar.Status.Allowed != q.allowed {
			t.Errorf("%s %s %s.%s/%s ns=%q name=%q: allowed=%v, want %v (%s)",
				q.sa, q.verb, q.resource, q.group, q.sub, q.ns, q.name, sar.Status.Allowed, q.allowed, sar.Status.Reason)
		}
	}
	t.Logf("%d authorization checks", len(qs))
}

// TestRBACDocs keeps the rule table in docs/rbac.md equal to Rules();
// -update rewrites it.
func TestRBACDocs(t *testing.T) {
	const path = "../../docs/rbac.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- BEGIN RULES (generated by go test ./internal/install -update) -->\n", "<!-- END RULES -->"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", path, begin, end)
	}
	want := RulesTable()
	if got := string(doc[i+len(begin) : j]); got != want {
		if !*update {
			t.Fatalf("%s's rule table is stale: run go test ./internal/install -update (-rendered +committed):\n%s", path, cmp.Diff(want, got))
		}
		out := string(doc[:i+len(begin)]) + want + string(doc[j:])
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
