package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// CheckTrust names the check that a trust rotation waits on at every phase
// (docs/identity.md, "Rotation"): Secrets say what was applied and what the
// controller wrote, the daemons' metrics what each process loaded.
const CheckTrust = "daemons use this cluster's trust bundle and issuer"

// trustWant is what the issuer Secret asks for: the bundle's roots and the
// issuer, by key fingerprint, and the root the issuer chains to.
type trustWant struct {
	roots      []string // sorted
	issuer     string
	issuerRoot string
}

// trustLoaded is what one process reports for one of its certificates
// (ferry_trust_root_info and ferry_certificate_info), or what the gateway's
// Secret holds.
type trustLoaded struct {
	who        string // as problems name it: a pod and its certificate, or the Secret
	cert       string
	roots      []string // sorted, no repeats
	leaf       string
	leafIssuer string
}

func (c *checker) trustInUse(ctx context.Context) error {
	s, issuerCert, err := c.issuerCert(ctx)
	if err != nil {
		return err
	}
	want, err := wantedTrust(s, issuerCert)
	if err != nil {
		return err
	}
	gw, err := c.readSecret(ctx, contract.GatewayTLSSecret)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no Secret %s: the controller has not issued the gateway's certificate", secretPath(contract.GatewayTLSSecret))
	}
	if err != nil {
		return err
	}
	secretLeaf, err := secretTrust(gw)
	if err != nil {
		return err
	}
	secretLeaf.who = "Secret " + secretPath(contract.GatewayTLSSecret)

	cs, err := kubernetes.NewForConfig(c.k.Config)
	if err != nil {
		return c.k.explain("connect", err)
	}
	loaded := []trustLoaded{secretLeaf} // judged like a process, and first
	var notes, unread []string
	for _, comp := range []struct {
		name string
		port int
	}{{contract.GatewayName, contract.GatewayAdminPort}, {contract.ControllerName, contract.ControllerAdminPort}} {
		pods, err := scrapeComponent(ctx, cs, comp.name, comp.port)
		switch {
		case apierrors.IsForbidden(err):
			return skipf("may not read the daemons' metrics (pods/proxy in %s): %v", contract.SystemNamespace, err)
		case errors.Is(err, errNoPods):
			unread = append(unread, comp.name)
		case err != nil:
			notes = append(notes, comp.name+": "+err.Error())
		}
		for _, p := range pods {
			loaded = append(loaded, loadedTrust(p)...)
		}
	}
	problems := trustProblems(want, secretLeaf.leaf, loaded)
	if len(notes) > 0 {
		problems = append(problems, "cannot read what every process loaded: "+strings.Join(notes, "; "))
	}
	if len(problems) > 0 {
		return withHint(fmt.Errorf("%s", strings.Join(problems, "; ")),
			"the controller copies the issuer Secret's bundle to the gateway's Secret and reissues leaves at once when the issuer changes, and the daemons reload both without a restart: "+
				"retry with --wait 1m; if it persists, see the controller's and gateway's logs")
	}
	agree := fmt.Sprintf("the running processes agree (%d certificates)", len(loaded)-1)
	if len(unread) > 0 {
		agree += fmt.Sprintf("; no running pods of %s to read", strings.Join(unread, ", "))
	}
	return passedf("%s; %s", describeTrust(want), agree)
}

// wantedTrust reads the issuer Secret's bundle and issuer.
func wantedTrust(s *corev1.Secret, issuerCert *x509.Certificate) (trustWant, error) {
	mesh, err := (&identity.CA{Cert: issuerCert}).MeshDomain()
	if err != nil {
		return trustWant{}, fmt.Errorf("the issuer's mesh: %w", err)
	}
	bundle, err := certsecret.ParseTrust(s.Data, mesh)
	if err != nil {
		return trustWant{}, fmt.Errorf("the Secret %s: %w", secretPath(contract.IssuerSecret), err)
	}
	w := trustWant{issuer: certsecret.KeyFingerprint(issuerCert), roots: fingerprints(bundle.Roots())}
	for _, r := range bundle.Roots() {
		if issuerCert.CheckSignatureFrom(r) == nil {
			w.issuerRoot = certsecret.KeyFingerprint(r)
		}
	}
	return w, nil
}

// secretTrust reads a leaf Secret (tls.crt with its issuer, ca.crt) as a
// process would load it.
func secretTrust(s *corev1.Secret) (trustLoaded, error) {
	chain, err := identity.ParseCertificatesPEM(s.Data[corev1.TLSCertKey])
	if err != nil {
		return trustLoaded{}, fmt.Errorf("the Secret %s/%s: %s: %w", s.Namespace, s.Name, corev1.TLSCertKey, err)
	}
	roots, err := identity.ParseCertificatesPEM(s.Data[certsecret.BundleKey])
	if err != nil {
		return trustLoaded{}, fmt.Errorf("the Secret %s/%s: %s: %w", s.Namespace, s.Name, certsecret.BundleKey, err)
	}
	t := trustLoaded{cert: "gateway", leaf: certsecret.KeyFingerprint(chain[0]), roots: fingerprints(roots)}
	if len(chain) > 1 {
		t.leafIssuer = certsecret.KeyFingerprint(chain[1])
	}
	return t, nil
}

// fingerprints is certs' key fingerprints, sorted, without repeats.
func fingerprints(certs []*x509.Certificate) []string {
	fps := make([]string, len(certs))
	for i, c := range certs {
		fps[i] = certsecret.KeyFingerprint(c)
	}
	slices.Sort(fps)
	return slices.Compact(fps)
}

// loadedTrust reads what one pod reports, one entry per cert label.
func loadedTrust(p podMetrics) []trustLoaded {
	by := map[string]*trustLoaded{}
	get := func(cert string) *trustLoaded {
		if by[cert] == nil {
			by[cert] = &trustLoaded{who: fmt.Sprintf("pod %s (%s certificate)", p.pod, cert), cert: cert}
		}
		return by[cert]
	}
	for _, m := range p.fams["ferry_trust_root_info"].GetMetric() {
		t := get(label(m, "cert"))
		t.roots = append(t.roots, label(m, "root"))
	}
	for _, m := range p.fams["ferry_certificate_info"].GetMetric() {
		t := get(label(m, "cert"))
		t.leaf, t.leafIssuer = label(m, "leaf"), label(m, "issuer")
	}
	var out []trustLoaded
	for _, t := range by {
		slices.Sort(t.roots)
		t.roots = slices.Compact(t.roots)
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b trustLoaded) int { return strings.Compare(a.who, b.who) })
	return out
}

// trustProblems lists where loaded differs from want: another set of roots,
// a leaf from another issuer, and (when gatewayLeaf is set) a gateway
// serving another leaf than its Secret holds. A process that has no leaf
// yet (a standby controller) is judged by its roots alone.
func trustProblems(want trustWant, gatewayLeaf string, loaded []trustLoaded) []string {
	var out []string
	if want.issuerRoot == "" {
		out = append(out, fmt.Sprintf("the issuer %s chains to none of the bundle's roots (%s): apply a bundle that holds its root",
			short(want.issuer), shortList(want.roots)))
	}
	for _, t := range loaded {
		who := t.who
		if !slices.Equal(t.roots, want.roots) {
			out = append(out, fmt.Sprintf("%s trusts %s, not the issuer Secret's %s", who, shortList(t.roots), shortList(want.roots)))
		}
		if t.leaf != "" && t.leafIssuer != want.issuer {
			out = append(out, fmt.Sprintf("%s has a leaf from issuer %s, not the current %s (it is reissued at once)", who, short(t.leafIssuer), short(want.issuer)))
		}
		if gatewayLeaf != "" && t.cert == "gateway" && t.leaf != "" && t.leaf != gatewayLeaf {
			out = append(out, fmt.Sprintf("%s serves leaf %s, not the Secret's %s", who, short(t.leaf), short(gatewayLeaf)))
		}
	}
	return out
}

// describeTrust says what a cluster trusts, in the words of a rotation.
func describeTrust(w trustWant) string {
	var roots []string
	for _, r := range w.roots {
		s := short(r)
		if r == w.issuerRoot {
			s += " (the issuer's)"
		}
		roots = append(roots, s)
	}
	return fmt.Sprintf("trusts %d root(s): %s; issuer %s", len(w.roots), strings.Join(roots, ", "), short(w.issuer))
}

// short is a fingerprint's first 12 hex digits, as people compare them;
// `ferry identity inspect` prints the whole.
func short(fp string) string {
	if fp == "" {
		return "(none)"
	}
	h := strings.TrimPrefix(fp, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func shortList(fps []string) string {
	if len(fps) == 0 {
		return "no roots"
	}
	out := make([]string, len(fps))
	for i, f := range fps {
		out[i] = short(f)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// CheckRetiring names the check a trust rotation waits on before it drops a
// root: see retiringSessions.
const CheckRetiring = "no tunnel session still carries streams on a replaced certificate"

// retiringSessions warns while the gateway holds tunnel sessions that were
// retired (its certificate was renewed, or they reached their age) but
// still carry streams. Those streams stay on the certificates of their
// session's handshake until they end: a root that those certificates chain
// to must not be dropped yet, or the streams are cut.
func (c *checker) retiringSessions(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.k.Config)
	if err != nil {
		return c.k.explain("connect", err)
	}
	pods, err := scrapeComponent(ctx, cs, contract.GatewayName, contract.GatewayAdminPort)
	switch {
	case apierrors.IsForbidden(err):
		return skipf("may not read the gateway's metrics (pods/proxy in %s): %v", contract.SystemNamespace, err)
	case errors.Is(err, errNoPods):
		return passedf("no running gateway pods to read")
	case err != nil:
		return fmt.Errorf("read the gateway's metrics: %w", err)
	}
	var busy []string
	for _, p := range pods {
		var n float64
		for _, m := range p.fams[retiringSessionsMetric].GetMetric() {
			n += m.GetGauge().GetValue()
		}
		if n > 0 {
			busy = append(busy, fmt.Sprintf("%s: %.0f", p.pod, n))
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("retired tunnel sessions still carry streams (%s); they close with their last stream", strings.Join(busy, ", "))
	}
	return nil
}

// retiringSessionsMetric is gatewayd.RetiringSessionsMetric; the CLI does
// not import the daemon.
const retiringSessionsMetric = "ferry_gateway_tunnel_sessions_retiring"
