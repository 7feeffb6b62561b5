package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Bounds of the revocation check's probes: each Link's gateway gets
// linkProbeTimeout in all (its addresses are tried in order within it), and
// at most linkProbeParallel Links are probed at once, so a check of 100
// unreachable Links takes about 100/8*3 s, not 300 s.
const (
	linkProbeTimeout  = 3 * time.Second
	linkProbeParallel = 8
)

// errProbeDone aborts a probe's handshake once the server's chain is in
// hand: the CLI has no mesh identity to present, and needs none.
var errProbeDone = errors.New("probe: server certificate read")

// linksNotRevoked reports every Link whose remote gateway presents a chain
// that this cluster's deny list refuses. A Link carries only the SPIFFE ID
// its gateway must present, not which issuer signs it, so the check asks
// the gateway: a TLS handshake to its address, read up to the server's
// certificate and then aborted, the chain judged by the verifier the
// importer uses. It runs only when the deny list is not empty. A Link whose
// gateway cannot be reached is not reported here (the Link status check
// reports it): which issuer it uses is then unknown.
func (c *checker) linksNotRevoked(ctx context.Context) error {
	switch _, err := readSecret(ctx, c.k, contract.IssuerSecret); {
	case apierrors.IsForbidden(err):
		return skipf("may not read the Secret %s", secretPath(contract.IssuerSecret))
	case apierrors.IsNotFound(err):
		return skipf("no Secret %s, so no deny list", secretPath(contract.IssuerSecret))
	}
	s, own, list, err := readDenyList(ctx, c.k)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return nil
	}
	mesh, err := (&identity.CA{Cert: own}).MeshDomain()
	if err != nil {
		return skipf("the issuer's mesh is unknown: %v", err)
	}
	bundle, err := certsecret.ParseTrust(s.Data, mesh)
	if err != nil {
		return fmt.Errorf("the Secret %s: %w", secretPath(contract.IssuerSecret), err)
	}
	links, err := getLinks(ctx, c.k)
	if err != nil {
		return err
	}
	problems := probeLinks(ctx, links, func(l *ferryv1.Link) string { return revokedLinkProblem(ctx, l, bundle, c.now()) })
	if len(problems) == 0 {
		return nil
	}
	return withHint(errors.New(listed(problems)),
		"its gateway is refused by every cluster that revoked that issuer. If the cluster is trusted again, give it a new issuer "+
			"('ferry identity issuer --cluster NAME --force', then install it there) and its gateway reconnects by itself; "+
			"if the revocation was a mistake, 'ferry identity unrevoke --fingerprint ...'; if the cluster is gone, 'ferry unlink --cluster-name NAME'")
}

// probeLinks runs problem for every Link not being deleted, at most
// linkProbeParallel at once, and returns the problems in Link order.
func probeLinks(ctx context.Context, links []ferryv1.Link, problem func(*ferryv1.Link) string) []string {
	out := make([]string, len(links))
	sem := make(chan struct{}, linkProbeParallel)
	var wg sync.WaitGroup
	for i := range links {
		if links[i].DeletionTimestamp != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if p := problem(&links[i]); p != "" {
				out[i] = "link " + links[i].Name + ": " + p
			}
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// revokedLinkProblem says why l's gateway is refused for a revoked key, or
// "" if it is not (or cannot be reached).
func revokedLinkProblem(ctx context.Context, l *ferryv1.Link, bundle *identity.Bundle, now time.Time) string {
	ctx, cancel := context.WithTimeout(ctx, linkProbeTimeout)
	defer cancel()
	chain, addr := probeGatewayChain(ctx, l.Spec.GatewayAddresses)
	if chain == nil {
		return ""
	}
	if _, err := identity.Verify(bundle, identity.PeerServer, chain, now); errors.Is(err, identity.ErrRevoked) {
		return fmt.Sprintf("the gateway at %s is refused: %v", addr, err)
	}
	return ""
}

// probeGatewayChain returns the chain the first answering address presents.
func probeGatewayChain(ctx context.Context, addrs []string) ([]*x509.Certificate, string) {
	for _, addr := range addrs {
		var chain []*x509.Certificate
		d := tls.Dialer{NetDialer: &net.Dialer{}, Config: &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, //nolint:gosec // the chain is judged by identity.Verify, not by crypto/tls
			VerifyConnection: func(cs tls.ConnectionState) error {
				chain = cs.PeerCertificates
				return errProbeDone
			},
		}}
		if conn, err := d.DialContext(ctx, "tcp", addr); err == nil {
			_ = conn.Close()
		}
		if len(chain) > 0 {
			return chain, addr
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, ""
}
