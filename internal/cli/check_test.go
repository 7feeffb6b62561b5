package cli

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/steering"
)

// healthyNorth builds, by hand, everything a working importer "north" has:
// the controller's Lease, the issuer and the gateway leaf Secrets, a gateway
// with a ready endpoint, a healthy Link to east, and one mirror with its
// EndpointSlice. Everything is removed when the test ends.
func healthyNorth(t *testing.T) client.Client {
	t.Helper()
	c := clusterClient(t, checked)
	ensureNamespace(t, c, contract.SystemNamespace)
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := root.NewIssuer(checked, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := issuer.IssueLeaf(contract.GatewayID(contract.DefaultMeshDomain, checked), 0)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey, err := identity.EncodeLeafPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	create(t, c,
		issuerSecret(t, issuer, root),
		tlsSecret(contract.GatewayTLSSecret, leafCert, leafKey, root.CertPEM()),
		&coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("ferry-controller-7d9f_1"), LeaseDurationSeconds: ptr.To(int32(15)),
				AcquireTime: &metav1.MicroTime{Time: now.Add(-time.Hour)}, RenewTime: &metav1.MicroTime{Time: now}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: contract.GatewayName},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "ingress", Port: contract.IngressPort}}},
		},
		gatewaySlice([]string{"198.18.4.1"}, true),
	)
	createLink(t, c, exporter, ptrTo(healthyStatus(1, now.Add(-time.Hour))))
	create(t, c, mirrorService("default", "cart-east", "east", 11000), mirrorSlice("default", "cart-east", "east", 11000),
		portClaims(11000, claims.Claim{Owner: claims.LinkOwner("east"), Namespace: "default", Service: "cart-east", Port: 80}))
	create(t, c, corednsObjects(kubeadmCorefile(contract.CorefileStanza))...)
	return c
}

// kubeadmCorefile is kubeadm's default Corefile with kubernetes block
// replaced by block.
func kubeadmCorefile(block string) string {
	return `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    ` + strings.ReplaceAll(block, "\n", "\n    ") + `
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`
}

// corednsObjects are CoreDNS's ConfigMap with corefile, and the RBAC that
// `ferry install` renders for its service account (install.corednsRBAC).
func corednsObjects(corefile string) []client.Object {
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Data: map[string]string{"Corefile": corefile}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: install.CoreDNSRBACName}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceimports"}, Verbs: []string{"list", "watch"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: install.CoreDNSRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: install.CoreDNSRBACName},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "kube-system", Name: "coredns"}}},
	}
}

// portClaims is the claims shard the controller writes for one claim.
func portClaims(egress int32, c claims.Claim) *corev1.ConfigMap {
	first := contract.PortClaimsShardOf(egress)
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: contract.PortClaimsName(first),
			Labels: map[string]string{contract.LabelPortClaims: "true"}},
		Data: map[string]string{contract.PortClaimsKey: claims.Encode(map[int32]claims.Claim{egress: c})},
	}
}

func issuerSecret(t *testing.T, issuer, root *identity.CA) *corev1.Secret {
	t.Helper()
	key, err := issuer.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return tlsSecret(contract.IssuerSecret, issuer.CertPEM(), key, root.CertPEM())
}

func tlsSecret(name string, cert, key, bundle []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: contract.SystemNamespace, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key, "ca.crt": bundle},
	}
}

func mirrorService(ns, name, link string, egress ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels:      map[string]string{contract.LabelLink: link, contract.LabelSourceCluster: link},
		Annotations: map[string]string{contract.AnnotationRemoteService: strings.TrimSuffix(name, "-"+link)}}}
	for i, p := range egress {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+i)), Port: int32(80 + i), TargetPort: intstr.FromInt32(p)})
	}
	return s
}

func mirrorSlice(ns, mirror, link string, port int32) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: mirror + "-ipv4", Labels: map[string]string{
			contract.LabelLink: link, contract.LabelSourceCluster: link, discoveryv1.LabelServiceName: mirror}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("pa"), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.4.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
}

func TestCheckHealthy(t *testing.T) {
	healthyNorth(t)
	golden(t, "check-healthy.txt", maskFingerprints(mustFerryOn(t, checked, "check")))

	var r CheckReport
	if err := json.Unmarshal([]byte(mustFerryOn(t, checked, "check", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Passed || r.Context != checked || len(r.Checks) < 12 {
		t.Errorf("report: %+v", r)
	}
	for _, c := range r.Checks {
		if c.Status != statusPassed || c.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts: %s", c.Name, c.Status, c.Attempts, c.Error)
		}
	}
}

// maskFingerprints hides the key fingerprints that the trust check prints
// (fresh keys each run) so that the rest can be a golden file.
func maskFingerprints(s string) string {
	return regexp.MustCompile(`\b[0-9a-f]{12}\b`).ReplaceAllString(s, "<fp>")
}

// failingCheck runs check and returns its output, requiring the exit error
// to be a one-line CheckFailedError.
func failingCheck(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := ferryOn(t, checked, append([]string{"check"}, args...)...)
	var failed *CheckFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("check: error %v, want a CheckFailedError\n%s", err, out)
	}
	oneLine(t, err, "fatal check(s) failed")
	return out
}

func TestCheckGatewayNotReady(t *testing.T) {
	c := healthyNorth(t)
	setGatewayReady(t, c, false)
	out := failingCheck(t)
	for _, want := range []string{
		"✘ gateway has ready endpoints\n    the gateway Service ferry-system/ferry-gateway has no ready endpoints (1 not ready)\n    hint: the gateway pods are not ready: `kubectl -n ferry-system get pods -l app.kubernetes.io/name=ferry-gateway`",
		"✔ issuer certificate is valid\n",
		"Status: 1 fatal failure (19 passed, 1 failed, 0 warnings, 0 skipped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The same as JSON: the report, then the exit error.
	out, _, err := ferryOn(t, checked, "check", "-o", "json")
	var r CheckReport
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || err == nil || r.Passed {
		t.Fatalf("-o json: %v, %v, %s", jerr, err, out)
	}
	for _, c := range r.Checks {
		if c.Name == checkGateway && (c.Status != statusFailed || c.Severity != SeverityFatal || !strings.Contains(c.Hint, "kubectl -n ferry-system logs deploy/ferry-gateway")) {
			t.Errorf("gateway check: %+v", c)
		}
	}
}

func setGatewayReady(t *testing.T, c client.Client, ready bool) {
	t.Helper()
	var s discoveryv1.EndpointSlice
	mustGet(t, c, contract.SystemNamespace, contract.GatewayName+"-abcde", &s)
	for i := range s.Endpoints {
		s.Endpoints[i].Conditions.Ready = ptr.To(ready)
	}
	if err := c.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRetriesWithinWait: a gateway that turns ready during --wait
// passes, after more than one attempt.
func TestCheckRetriesWithinWait(t *testing.T) {
	c := healthyNorth(t)
	setGatewayReady(t, c, false)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		var s discoveryv1.EndpointSlice
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: contract.SystemNamespace, Name: contract.GatewayName + "-abcde"}, &s); err == nil {
			s.Endpoints[0].Conditions.Ready = ptr.To(true)
			_ = c.Update(context.Background(), &s)
		}
	}()
	var r CheckReport
	out, stderr, err := ferryOn(t, checked, "check", "--wait", "20s", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("check --wait in a pipe wrote to stderr: %q", stderr)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		if c.Name == checkGateway && (c.Status != statusPassed || c.Attempts < 2) {
			t.Errorf("gateway check: %+v", c)
		}
	}
}

// TestCheckWaitProgressOnTerminal: while a check is retried, a terminal
// shows which and why on one stderr line, cleared before each result, so
// the streamed table on stdout stays clean.
func TestCheckWaitProgressOnTerminal(t *testing.T) {
	c := healthyNorth(t)
	setGatewayReady(t, c, false)
	go func() {
		time.Sleep(2500 * time.Millisecond)
		var s discoveryv1.EndpointSlice
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: contract.SystemNamespace, Name: contract.GatewayName + "-abcde"}, &s); err == nil {
			s.Endpoints[0].Conditions.Ready = ptr.To(true)
			_ = c.Update(context.Background(), &s)
		}
	}()
	out, stderr, err := ferryOnTerminal(t, checked, "check", "--wait", "20s")
	if err != nil {
		t.Fatalf("%v\n%q", err, stderr)
	}
	want := "\rwaiting for \"gateway has ready endpoints\": the gateway Service ferry-system/ferry-gateway has no ready endpoints (1 not ready), "
	if !strings.HasPrefix(stderr, want) || !strings.HasSuffix(stderr, "\r"+clearToEOL) || strings.Contains(stderr, "\n") {
		t.Errorf("stderr %q\nwant one status line starting %q, cleared at the end", stderr, want)
	}
	if hasControl(out) || !strings.Contains(out, "✔ gateway has ready endpoints\n") {
		t.Errorf("stdout:\n%q", out)
	}
}

func TestCheckIssuerExpired(t *testing.T) {
	c := healthyNorth(t)
	past := time.Now().Add(-60 * 24 * time.Hour)
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0, identity.WithClock(func() time.Time { return past }))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := root.NewIssuer(checked, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	replaceSecret(t, c, issuerSecret(t, expired, root))
	out := failingCheck(t)
	for _, want := range []string{
		"✘ issuer certificate is valid\n    the issuer in Secret ferry-system/ferry-issuer expired 30d ago (",
		"    hint: make a new issuer with `ferry identity issuer --cluster NAME --root-dir MESH-CA --out DIR` and re-apply `ferry install ... --identity-dir DIR`",
		"- issuer is not near expiry\n    skipped: needs: issuer certificate is valid\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func replaceSecret(t *testing.T, c client.Client, s *corev1.Secret) {
	t.Helper()
	var cur corev1.Secret
	mustGet(t, c, s.Namespace, s.Name, &cur)
	cur.Data = s.Data
	if err := c.Update(context.Background(), &cur); err != nil {
		t.Fatal(err)
	}
}

// TestCheckWarnings: an issuer close to expiry and an orphaned mirror are
// warnings with hints, and the exit status stays zero.
func TestCheckWarnings(t *testing.T) {
	c := healthyNorth(t)
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	soon, err := root.NewIssuer(checked, 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	replaceSecret(t, c, issuerSecret(t, soon, root))
	// The gateway's leaf follows the new issuer, as the controller would
	// reissue it; otherwise the trust check fails, rightly.
	leaf, err := soon.IssueLeaf(contract.GatewayID(contract.DefaultMeshDomain, checked), 0)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey, err := identity.EncodeLeafPEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	replaceSecret(t, c, tlsSecret(contract.GatewayTLSSecret, leafCert, leafKey, root.CertPEM()))
	create(t, c, mirrorService("default", "cart-gone", "gone", 11001))
	out := mustFerryOn(t, checked, "check")
	for _, want := range []string{
		"⚠ issuer is not near expiry\n    the issuer expires in 9d",
		"⚠ no orphaned Ferry objects\n    the owning Link does not exist for 1 object: Service default/cart-gone (link gone)\n    hint: their Link was removed without its finalizer running, so nothing will delete them: `kubectl delete svc,endpointslices,serviceimports -A -l ferry.dev/link=gone,ferry.dev/source-cluster`",
		"Status: passed with warnings (18 passed, 0 failed, 2 warnings, 0 skipped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCheckNamespaceMissing: an exporter's export in a namespace this
// cluster never created is a warning with what to do, and check exits 0;
// a full port range behind the same Link stays fatal.
func TestCheckNamespaceMissing(t *testing.T) {
	c := healthyNorth(t)
	setSynced := func(reason, msg string) {
		t.Helper()
		var l ferryv1.Link
		mustGet(t, c, contract.SystemNamespace, exporter, &l)
		meta.SetStatusCondition(&l.Status.Conditions, metav1.Condition{Type: ferryv1.LinkSynced, Status: metav1.ConditionFalse, Reason: reason, Message: msg})
		l.Status.Message = msg
		if err := c.Status().Update(context.Background(), &l); err != nil {
			t.Fatal(err)
		}
	}
	setSynced("NamespaceMissing", "2 exports of east wait for namespaces that do not exist here: shop; create them to import")
	out := mustFerryOn(t, checked, "check")
	for _, want := range []string{
		"✔ Links are connected, synced and healthy\n",
		"⚠ Links import every export (no namespace missing)\n    link east: 2 exports of east wait for namespaces that do not exist here: shop; create them to import\n    hint: Ferry never creates namespaces. If you want those services here, create the namespace (`kubectl create namespace NS`)",
		"Status: passed with warnings (19 passed, 0 failed, 1 warning, 0 skipped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	setSynced("PortsExhausted", "1 exports not imported because the egress port range is full (default/db); widen --egress-port-range; 2 exports of east wait for namespaces that do not exist here: shop; create them to import")
	out = failingCheck(t)
	if want := "✘ Links are connected, synced and healthy\n    link east: Synced=False (PortsExhausted)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestCheckRoutesNotAccepted: a route on a ServiceImport that the
// controller has not processed, then one it refused, are warnings that
// name the route and the reason.
func TestCheckRoutesNotAccepted(t *testing.T) {
	c := healthyNorth(t)
	ctx := context.Background()
	r := &gwv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cart-split"},
		Spec: gwv1.TCPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptr.To(gwv1.Group(steering.ParentGroup)), Kind: ptr.To(gwv1.Kind(steering.ParentKind)), Name: "cart"}}},
			Rules: []gwv1.TCPRouteRule{{BackendRefs: []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "cart-east", Port: ptr.To(gwv1.PortNumber(80))}}}}},
		},
	}
	create(t, c, r)
	t.Cleanup(func() { _ = c.Delete(ctx, r) })
	out := mustFerryOn(t, checked, "check")
	if want := "⚠ routes on clusterset services are accepted\n    TCPRoute default/cart-split (parent ServiceImport cart): not processed yet"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	r.Status.Parents = []gwv1.RouteParentStatus{{
		ParentRef: r.Spec.ParentRefs[0], ControllerName: contract.GatewayControllerName,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "NoMatchingParent", Message: "default/cart is not a clusterset service",
			ObservedGeneration: r.Generation, LastTransitionTime: metav1.Now()}},
	}}
	if err := c.Status().Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	out = mustFerryOn(t, checked, "check")
	if want := "TCPRoute default/cart-split (parent ServiceImport cart): NoMatchingParent: default/cart is not a clusterset service"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestCheckImportsWithoutAddress: a ServiceImport that the controller
// wrote without an address because the clusterset range is full is a
// warning naming it; one only waiting for its ClusterIP is not.
func TestCheckImportsWithoutAddress(t *testing.T) {
	c := healthyNorth(t)
	ctx := context.Background()
	si := func(name, reason string) *mcsv1beta1.ServiceImport {
		s := &mcsv1beta1.ServiceImport{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{contract.LabelClusterset: name}},
			Spec:       mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
		}
		create(t, c, s)
		t.Cleanup(func() { _ = c.Delete(ctx, s) })
		s.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: reason, Message: "m", LastTransitionTime: metav1.Now()}}
		if err := c.Status().Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	si("full", clusterset.PortsExhausted)
	si("waiting", "Pending")
	out := mustFerryOn(t, checked, "check")
	if want := "⚠ clusterset imports have addresses\n    1 ServiceImport(s) have no clusterset address because the clusterset port range is full: default/full\n    hint: widen --clusterset-port-range"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestCheckControllerStopped: a Lease not renewed for minutes.
func TestCheckControllerStopped(t *testing.T) {
	c := healthyNorth(t)
	var l coordinationv1.Lease
	mustGet(t, c, contract.SystemNamespace, contract.LeaderElectionID, &l)
	l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now().Add(-5 * time.Minute)}
	if err := c.Update(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	out := failingCheck(t)
	if want := "✘ controller is running and holds the leader lease\n    ferry-controller-7d9f_1 last renewed Lease ferry-system/ferry-controller 5m"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestCheckUnreachable: without an API server, the first check fails and
// the rest are skipped rather than each failing the same way.
func TestCheckUnreachable(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "config")
	writeKubeconfig(t, kc, "https://127.0.0.1:1", "down")
	out, _, err := execFerry(t, "--kubeconfig", kc, "check")
	var failed *CheckFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{
		"✘ Kubernetes API is reachable\n    get the server version: cannot reach the API server https://127.0.0.1:1 of context \"down\"",
		"- egress ports are consistent\n    skipped: needs: Kubernetes API is reachable\n",
		"(0 passed, 1 failed, 0 warnings, 19 skipped)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
