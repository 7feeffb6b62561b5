package benchpeer

import (
	"crypto"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// mesh is a throwaway root, one issuer per cluster and a gateway leaf for
// east and west, made with the identity package directly (identitytest
// wants a testing.TB, which a command does not have). Ferry and HAProxy use
// the same certificates: ECDSA P-256 leaves with a SPIFFE URI SAN, chained
// to a per-cluster issuer under the root.
type mesh struct {
	domain string
	root   *identity.CA
	bundle *identity.Bundle
	east   gatewayCert
	west   gatewayCert
}

type gatewayCert struct {
	id   identity.ID
	leaf *tls.Certificate // leaf then issuer
}

func newMesh() (*mesh, error) {
	domain := contract.DefaultMeshDomain
	root, err := identity.NewRoot(domain, 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("benchpeer: root: %w", err)
	}
	bundle, err := identity.NewBundle(domain, root.Cert)
	if err != nil {
		return nil, fmt.Errorf("benchpeer: bundle: %w", err)
	}
	m := &mesh{domain: domain, root: root, bundle: bundle}
	for _, gc := range []struct {
		name string
		into *gatewayCert
	}{{"east", &m.east}, {"west", &m.west}} {
		issuer, err := root.NewIssuer(gc.name, 12*time.Hour)
		if err != nil {
			return nil, fmt.Errorf("benchpeer: issuer %s: %w", gc.name, err)
		}
		id := contract.GatewayID(domain, gc.name)
		leaf, err := issuer.IssueLeaf(id, time.Hour)
		if err != nil {
			return nil, fmt.Errorf("benchpeer: leaf %s: %w", gc.name, err)
		}
		*gc.into = gatewayCert{id: id, leaf: leaf}
	}
	return m, nil
}

// source is a ready identity.Source for one gateway.
func (m *mesh) source(g gatewayCert) (*identity.Source, error) {
	s, err := identity.NewSource(g.leaf, m.bundle)
	if err != nil {
		return nil, fmt.Errorf("benchpeer: source %s: %w", g.id, err)
	}
	return s, nil
}

// pemFiles are the files HAProxy reads: crt files hold the leaf, its
// issuer and the key (HAProxy's one-file format); ca holds the root.
type pemFiles struct {
	eastCrt, westCrt, ca string
}

// writePEMs writes the HAProxy files into dir (keys 0600).
func (m *mesh) writePEMs(dir string) (pemFiles, error) {
	f := pemFiles{
		eastCrt: filepath.Join(dir, "east.pem"),
		westCrt: filepath.Join(dir, "west.pem"),
		ca:      filepath.Join(dir, "ca.pem"),
	}
	if err := os.WriteFile(f.ca, m.bundle.PEM(), 0o600); err != nil {
		return f, fmt.Errorf("benchpeer: write CA: %w", err)
	}
	for path, g := range map[string]gatewayCert{f.eastCrt: m.east, f.westCrt: m.west} {
		var out []byte
		for _, der := range g.leaf.Certificate {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		key, err := identity.EncodePrivateKeyPEM(g.leaf.PrivateKey.(crypto.Signer))
		if err != nil {
			return f, fmt.Errorf("benchpeer: key of %s: %w", g.id, err)
		}
		if err := os.WriteFile(path, append(out, key...), 0o600); err != nil {
			return f, fmt.Errorf("benchpeer: write %s: %w", path, err)
		}
	}
	return f, nil
}
