package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/discovery"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Names of checks that others require.
const (
	checkAPI      = "Kubernetes API is reachable"
	checkCRDs     = "CRDs are installed (Link, ServiceExport, ServiceImport)"
	checkIssuer   = "issuer certificate is valid"
	checkGateway  = "gateway has ready endpoints"
	issuerWarnAge = 30 * 24 * time.Hour
	// leaseSkew allows for the clocks of this machine and the controller's
	// node to differ; a stopped controller is still caught within a minute.
	leaseSkew = 30 * time.Second
	// defaultLeaseDuration is controller-runtime's, for a Lease without one.
	defaultLeaseDuration = 15 * time.Second
)

// checker holds what the checks share: the connection and the clock.
type checker struct {
	k   *kubeTarget
	now func() time.Time
}

func (c *checker) checks() []Check {
	ns := contract.SystemNamespace
	return []Check{
		{Name: checkAPI, Severity: SeverityFatal, Run: c.apiReachable,
			Hint: "check --context and --kubeconfig, and that the cluster is up (`kubectl version`)"},
		{Name: checkCRDs, Severity: SeverityFatal, Requires: checkAPI, Run: c.crdsInstalled,
			Hint: "install Ferry, whose manifests include the CRDs: `ferry install --cluster-name NAME --identity-dir DIR | kubectl apply -f -`"},
		{Name: "controller is running and holds the leader lease", Severity: SeverityFatal, Requires: checkAPI, Run: c.controllerLease,
			Hint: fmt.Sprintf("start or fix the controller: `kubectl -n %s get deploy,pods -l app.kubernetes.io/name=ferry-controller` and `kubectl -n %s logs deploy/%s`", ns, ns, contract.ControllerName)},
		{Name: checkGateway, Severity: SeverityFatal, Requires: checkAPI, Run: c.gatewayReady,
			Hint: fmt.Sprintf("the gateway pods are not ready: `kubectl -n %s get pods -l app.kubernetes.io/name=ferry-gateway` and `kubectl -n %s logs deploy/%s`; a gateway turns ready once it has loaded its certificate from Secret %s", ns, ns, contract.GatewayName, contract.GatewayTLSSecret)},
		{Name: checkIssuer, Severity: SeverityFatal, Requires: checkAPI, Run: c.issuerValid,
			Hint: "make a new issuer with `ferry identity issuer --cluster NAME --root-dir MESH-CA --out DIR` and re-apply `ferry install ... --identity-dir DIR`; the controller loads it without a restart"},
		{Name: "issuer is not near expiry", Severity: SeverityWarning, Requires: checkIssuer, Run: c.issuerNotExpiring,
			Hint: "rotate it before it expires: `ferry identity issuer --cluster NAME --root-dir MESH-CA --out DIR --force`, then re-apply `ferry install ... --identity-dir DIR`"},
		{Name: "gateway certificate is fresh and chains to the trust bundle", Severity: SeverityFatal, Requires: checkAPI, Run: c.gatewayLeafFresh,
			Hint: fmt.Sprintf("the controller issues and rotates Secret %s/%s: check the controller lease and its logs (`kubectl -n %s logs deploy/%s`), and that the issuer is valid", ns, contract.GatewayTLSSecret, ns, contract.ControllerName)},
		{Name: CheckTrust, Severity: SeverityFatal, Requires: checkIssuer, Run: c.trustInUse,
			Hint: "during a trust rotation, wait for this check on every cluster before the next phase (docs/identity.md, \"Rotation\")"},
		{Name: CheckRetiring, Severity: SeverityWarning, Requires: checkAPI, Run: c.retiringSessions,
			Hint: "those streams end by themselves, at the latest at the sessions' maximum age plus its grace (75 min by default). During a trust rotation, wait until this passes on every cluster before dropping the old root (docs/identity.md, \"Rotation\"): dropping it cuts them"},
		{Name: "Links are connected, synced and healthy", Severity: SeverityFatal, Requires: checkCRDs, Run: c.linksHealthy,
			Hint: "see `ferry links`: the MESSAGE column says what to do for each Link"},
		{Name: "Links import every export (no namespace missing)", Severity: SeverityWarning, Requires: checkCRDs, Run: c.linksWaitForNamespaces,
			Hint: "Ferry never creates namespaces. If you want those services here, create the namespace (`kubectl create namespace NS`) and they are imported within seconds; if you do not, nothing is broken: the exporting cluster can leave this cluster out with `ferry export svc/NAME -n NS --to CLUSTERS`"},
		{Name: "Link gateway identities belong to their clusters", Severity: SeverityFatal, Requires: checkCRDs, Run: c.linkIdentities,
			Hint: "regenerate the Link from the exporting cluster: `ferry --context REMOTE link --cluster-name REMOTE | kubectl apply -f -`"},
		{Name: "Link gateways are not revoked", Severity: SeverityFatal, Requires: checkCRDs, Run: c.linksNotRevoked,
			Hint: "see the deny list with 'ferry identity revoked'"},
		{Name: "mirrors have EndpointSlices", Severity: SeverityFatal, Requires: checkCRDs, Run: c.mirrorsHaveEndpoints,
			Hint: fmt.Sprintf("the controller writes mirror EndpointSlices from the gateway's ready pods: fix the gateway check first, then see `kubectl -n %s logs deploy/%s`", ns, contract.ControllerName)},
		{Name: "no orphaned Ferry objects", Severity: SeverityWarning, Requires: checkCRDs, Run: c.noOrphans,
			Hint: "their Link was removed without its finalizer running: delete them with `kubectl delete svc,endpointslices,serviceimports -A -l ferry.dev/link=NAME,ferry.dev/source-cluster`"},
		{Name: "no forged mirrors", Severity: SeverityWarning, Requires: checkCRDs, Run: c.noForgedMirrors,
			Hint: "someone wrote Services that carry Ferry's labels (docs/security.md, finding 1); the gateway routes none of them that is being deleted and the controller deletes the rest: remove their finalizers and delete them, then find out who wrote them"},
		{Name: "egress ports are consistent", Severity: SeverityFatal, Requires: checkAPI, Run: c.egressPorts,
			Hint: "egress ports are allocated by the controller: delete the mirror Services named above and it recreates them with fresh ports"},
		{Name: "CoreDNS serves clusterset.local", Severity: SeverityWarning, Requires: checkAPI, Run: c.clustersetDNS,
			Hint: "without it pods reach imports by their mirrors' cluster.local names only (docs/dns.md)"},
		{Name: "clusterset imports have addresses", Severity: SeverityWarning, Requires: checkCRDs, Run: c.importsHaveAddresses,
			Hint: fmt.Sprintf("widen --clusterset-port-range on both Deployments in %s (ferry-controller allocates it, ferry-gateway opens it; docs/scale.md): the imports get their addresses at the controller's next pass", ns)},
		{Name: "routes on clusterset services are accepted", Severity: SeverityWarning, Requires: checkAPI, Run: c.routesAccepted,
			Hint: "fix each route as its Accepted condition says (`kubectl describe tcproute|httproute NAME`; docs/steering.md lists what Ferry implements); until then the service keeps the split it had"},
	}
}

func (c *checker) apiReachable(context.Context) error {
	dc, err := c.discovery()
	if err != nil {
		return err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return c.k.explain("get the server version", err)
	}
	return nil
}

func (c *checker) discovery() (*discovery.DiscoveryClient, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.k.Config)
	if err != nil {
		return nil, c.k.explain("connect", err)
	}
	return dc, nil
}

// crdsInstalled asks discovery rather than reading the CRDs: every
// authenticated user may use discovery, few may read CRDs, and a CRD that
// exists but is not established is not served anyway.
func (c *checker) crdsInstalled(context.Context) error {
	dc, err := c.discovery()
	if err != nil {
		return err
	}
	var missing []string
	for gv, resources := range map[string][]string{
		"ferry.dev/v1alpha1":            {"links"},
		"multicluster.x-k8s.io/v1beta1": {"serviceexports", "serviceimports"},
	} {
		list, err := dc.ServerResourcesForGroupVersion(gv)
		if err != nil && !apierrors.IsNotFound(err) {
			return c.k.explain("discover "+gv, err)
		}
		for _, r := range resources {
			found := false
			if list != nil {
				for _, ar := range list.APIResources {
					found = found || ar.Name == r
				}
			}
			if !found {
				missing = append(missing, r+"."+strings.Split(gv, "/")[0])
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("not served: %s", strings.Join(missing, ", "))
	}
	return nil
}

func (c *checker) controllerLease(ctx context.Context) error {
	var lease coordinationv1.Lease
	err := c.k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID}, &lease)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no Lease %s/%s: the controller has never become leader%s", contract.SystemNamespace, contract.LeaderElectionID, c.controllerReplicas(ctx))
	}
	if err != nil {
		return c.k.explain("get the controller's Lease", err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	if holder == "" || lease.Spec.RenewTime == nil {
		return fmt.Errorf("nobody holds Lease %s/%s: the controller is not running%s", contract.SystemNamespace, contract.LeaderElectionID, c.controllerReplicas(ctx))
	}
	d := defaultLeaseDuration
	if lease.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
	}
	if since := c.now().Sub(lease.Spec.RenewTime.Time); since > d+leaseSkew {
		return fmt.Errorf("%s last renewed Lease %s/%s %s ago (it must renew every %s): the controller has stopped%s",
			holder, contract.SystemNamespace, contract.LeaderElectionID, duration.HumanDuration(since), d, c.controllerReplicas(ctx))
	}
	return nil
}

// controllerReplicas adds the Deployment's readiness to a lease failure,
// when there is a Deployment to read.
func (c *checker) controllerReplicas(ctx context.Context) string {
	d := deploymentReady(ctx, c.k, contract.ControllerName)
	if d == "" {
		return ""
	}
	return " (Deployment " + contract.ControllerName + ": " + d + ")"
}

func (c *checker) gatewayReady(ctx context.Context) error {
	var svc corev1.Service
	err := c.k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}, &svc)
	if apierrors.IsNotFound(err) {
		return withHint(fmt.Errorf("no Service %s/%s", contract.SystemNamespace, contract.GatewayName),
			"install Ferry: `ferry install --cluster-name NAME --identity-dir DIR | kubectl apply -f -`")
	}
	if err != nil {
		return c.k.explain("get the gateway Service", err)
	}
	pods, err := gatewayEndpoints(ctx, c.k)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(pods, func(p gatewayPod) bool { return p.Ready }) {
		extra := ""
		if d := deploymentReady(ctx, c.k, contract.GatewayName); d != "" {
			extra = "; Deployment " + contract.GatewayName + ": " + d
		}
		return fmt.Errorf("the gateway Service %s/%s has no ready endpoints (%d not ready)%s", contract.SystemNamespace, contract.GatewayName, len(pods), extra)
	}
	return nil
}

// deploymentReady says "1/2 ready" for a Deployment in ferry-system, or ""
// when there is none (or it may not be read).
func deploymentReady(ctx context.Context, k *kubeTarget, name string) string {
	var d appsv1.Deployment
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: name}, &d); err != nil {
		return ""
	}
	return deploymentVersion(&d).Ready + " ready"
}

// readSecret reads a Secret in ferry-system. Not being allowed to is a
// skip: the user can still check everything else.
func (c *checker) readSecret(ctx context.Context, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := c.k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: name}, &s)
	switch {
	case apierrors.IsForbidden(err):
		return nil, skipf("not allowed to read Secret %s/%s in context %q", contract.SystemNamespace, name, c.k.Context)
	case err != nil:
		return nil, c.k.explain("get Secret "+name, err)
	}
	return &s, nil
}

func (c *checker) issuerCert(ctx context.Context) (*corev1.Secret, *x509.Certificate, error) {
	s, err := c.readSecret(ctx, contract.IssuerSecret)
	if apierrors.IsNotFound(err) {
		return nil, nil, withHint(fmt.Errorf("no Secret %s/%s", contract.SystemNamespace, contract.IssuerSecret),
			"install Ferry with its issuer: `ferry install --cluster-name NAME --identity-dir DIR | kubectl apply -f -`")
	}
	if err != nil {
		return nil, nil, err
	}
	certs, err := identity.ParseCertificatesPEM(s.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, nil, fmt.Errorf("the Secret %s/%s: %s: %w", contract.SystemNamespace, contract.IssuerSecret, corev1.TLSCertKey, err)
	}
	return s, certs[0], nil
}

func (c *checker) issuerValid(ctx context.Context) error {
	s, cert, err := c.issuerCert(ctx)
	if err != nil {
		return err
	}
	now := c.now()
	switch {
	case now.After(cert.NotAfter):
		return fmt.Errorf("the issuer in Secret %s/%s expired %s ago (%s): the controller cannot issue or rotate certificates",
			contract.SystemNamespace, contract.IssuerSecret, duration.HumanDuration(now.Sub(cert.NotAfter)), cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("the issuer in Secret %s/%s is not valid until %s: check this machine's and the cluster's clocks",
			contract.SystemNamespace, contract.IssuerSecret, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	ca, bundle, err := identity.LoadIssuer(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data["ca.crt"])
	if err != nil {
		return fmt.Errorf("the Secret %s/%s: %w", contract.SystemNamespace, contract.IssuerSecret, err)
	}
	// The controller refuses the Secret for its deny list as for anything
	// else in it (docs/identity.md, "Revocation").
	if bundle, err = certsecret.ParseTrust(s.Data, bundle.MeshDomain()); err != nil {
		return fmt.Errorf("the Secret %s/%s: %w", contract.SystemNamespace, contract.IssuerSecret, err)
	}
	if bundle.IsRevoked(ca.Cert) {
		return fmt.Errorf("the Secret %s/%s: this cluster's own issuer is on its deny list (%s): the controller issues nothing from it",
			contract.SystemNamespace, contract.IssuerSecret, certsecret.RevokedKey)
	}
	td, _ := ca.TrustDomain()
	if loc := c.local(ctx); loc.cluster != "" && loc.mesh != "" && td != loc.cluster+"."+loc.mesh {
		return fmt.Errorf("the issuer is for trust domain %s, but the controller runs as %s.%s", td, loc.cluster, loc.mesh)
	}
	return nil
}

func (c *checker) issuerNotExpiring(ctx context.Context) error {
	_, cert, err := c.issuerCert(ctx)
	if err != nil {
		return err
	}
	if left := cert.NotAfter.Sub(c.now()); left < issuerWarnAge {
		return fmt.Errorf("the issuer expires in %s (%s)", duration.HumanDuration(left), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// gatewayLeafFresh checks the leaf the controller keeps in
// ferry-gateway-tls: valid now, not left past its renewal point (which means
// rotation is not happening), and verifiable against its bundle with the
// same verifier remote gateways use.
func (c *checker) gatewayLeafFresh(ctx context.Context) error {
	s, err := c.readSecret(ctx, contract.GatewayTLSSecret)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no Secret %s/%s: the controller has not issued the gateway's certificate", contract.SystemNamespace, contract.GatewayTLSSecret)
	}
	if err != nil {
		return err
	}
	chain, err := identity.ParseCertificatesPEM(s.Data[corev1.TLSCertKey])
	if err != nil {
		return fmt.Errorf("the Secret %s/%s: %s: %w", contract.SystemNamespace, contract.GatewayTLSSecret, corev1.TLSCertKey, err)
	}
	leaf, now := chain[0], c.now()
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("the gateway certificate expired %s ago: remote clusters refuse it", duration.HumanDuration(now.Sub(leaf.NotAfter)))
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if renew := identity.RenewalTime(leaf); now.After(renew.Add(renewalGrace(life))) {
		return fmt.Errorf("the gateway certificate should have been renewed %s ago (at 2/3 of its %s life) and expires in %s: rotation is not happening",
			duration.HumanDuration(now.Sub(renew)), duration.HumanDuration(life), duration.HumanDuration(leaf.NotAfter.Sub(now)))
	}
	id, err := identity.IDFromCertificate(leaf, "")
	if err != nil {
		return fmt.Errorf("the gateway certificate: %w", err)
	}
	bundle, err := identity.ParseBundle(id.MeshDomain, s.Data["ca.crt"])
	if err != nil {
		return fmt.Errorf("the Secret %s/%s: ca.crt: %w", contract.SystemNamespace, contract.GatewayTLSSecret, err)
	}
	if _, err := identity.Verify(bundle, identity.PeerServer, chain, now); err != nil {
		return fmt.Errorf("the gateway certificate does not verify against its trust bundle: %w", err)
	}
	if loc := c.local(ctx); loc.cluster != "" && id != contract.GatewayID(id.MeshDomain, loc.cluster) {
		return fmt.Errorf("the gateway certificate is for %s, not this cluster's gateway (cluster %q)", id, loc.cluster)
	}
	return nil
}

// renewalGrace is how long past its renewal point a leaf may be before the
// check fails: a tenth of its life (2.4h for 24h leaves), at least a minute,
// so a rotation in progress is not reported.
func renewalGrace(life time.Duration) time.Duration {
	return max(life/10, time.Minute)
}

// localIdentity is this cluster's name and mesh, when they can be learned.
type localIdentity struct{ cluster, mesh string }

// local learns the cluster and mesh from the controller's arguments, else
// from the issuer's trust domain; "" where neither says.
func (c *checker) local(ctx context.Context) localIdentity {
	args := controllerArgs(ctx, c.k)
	loc := localIdentity{cluster: args["cluster-name"], mesh: args["mesh-domain"]}
	if loc.cluster != "" && loc.mesh != "" {
		return loc
	}
	var s corev1.Secret
	if err := c.k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.IssuerSecret}, &s); err == nil {
		if certs, err := identity.ParseCertificatesPEM(s.Data[corev1.TLSCertKey]); err == nil {
			if td, err := (&identity.CA{Cert: certs[0]}).TrustDomain(); err == nil {
				cluster, mesh, _ := strings.Cut(td, ".")
				loc = localIdentity{cluster: cluster, mesh: mesh}
			}
		}
	}
	return loc
}
