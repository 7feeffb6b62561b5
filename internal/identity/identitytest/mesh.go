package identitytest

import (
	"crypto/tls"
	"testing"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Mesh is a root, its bundle and one issuer per cluster.
type Mesh struct {
	Domain   string
	Root     *identity.CA
	Bundle   *identity.Bundle
	Clusters map[string]*Cluster
}

// Cluster is one cluster's issuer and ready Sources for Ferry's own
// identities, each holding a fresh leaf and the mesh bundle.
type Cluster struct {
	Name       string
	Mesh       *Mesh
	Issuer     *identity.CA
	Gateway    *identity.Source
	Controller *identity.Source
}

// NewMesh makes a mesh named mesh ("" means contract.DefaultMeshDomain)
// with the given clusters. Two calls with the same name give two meshes
// that do not trust each other, which is how to get a foreign root.
func NewMesh(t testing.TB, mesh string, clusters ...string) *Mesh {
	t.Helper()
	if mesh == "" {
		mesh = contract.DefaultMeshDomain
	}
	root, err := identity.NewRoot(mesh, time.Hour*24*365)
	if err != nil {
		t.Fatalf("identitytest: root: %v", err)
	}
	bundle, err := identity.NewBundle(mesh, root.Cert)
	if err != nil {
		t.Fatalf("identitytest: bundle: %v", err)
	}
	m := &Mesh{Domain: mesh, Root: root, Bundle: bundle, Clusters: map[string]*Cluster{}}
	for _, name := range clusters {
		m.AddCluster(t, name)
	}
	return m
}

// AddCluster adds an issuer and Sources for cluster name.
func (m *Mesh) AddCluster(t testing.TB, name string) *Cluster {
	t.Helper()
	issuer, err := m.Root.NewIssuer(name, time.Hour*24*30)
	if err != nil {
		t.Fatalf("identitytest: issuer %s: %v", name, err)
	}
	c := &Cluster{Name: name, Mesh: m, Issuer: issuer}
	c.Gateway = c.Source(t, c.GatewayID())
	c.Controller = c.Source(t, c.ControllerID())
	m.Clusters[name] = c
	return c
}

// Cluster returns the named cluster, failing the test if it is unknown.
func (m *Mesh) Cluster(t testing.TB, name string) *Cluster {
	t.Helper()
	c, ok := m.Clusters[name]
	if !ok {
		t.Fatalf("identitytest: no cluster %q in mesh %s", name, m.Domain)
	}
	return c
}

// GatewayID is the cluster's gateway identity.
func (c *Cluster) GatewayID() identity.ID { return contract.GatewayID(c.Mesh.Domain, c.Name) }

// ControllerID is the cluster's controller identity.
func (c *Cluster) ControllerID() identity.ID { return contract.ControllerID(c.Mesh.Domain, c.Name) }

// ID is an arbitrary workload identity in the cluster.
func (c *Cluster) ID(namespace, serviceAccount string) identity.ID {
	return identity.ID{MeshDomain: c.Mesh.Domain, Cluster: c.Name, Namespace: namespace, ServiceAccount: serviceAccount}
}

// Leaf issues a default-lifetime leaf for id from the cluster's issuer.
func (c *Cluster) Leaf(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	leaf, err := c.Issuer.IssueLeaf(id, 0)
	if err != nil {
		t.Fatalf("identitytest: leaf %s: %v", id, err)
	}
	return leaf
}

// Source is a new Source holding a fresh leaf for id and the mesh bundle.
func (c *Cluster) Source(t testing.TB, id identity.ID) *identity.Source {
	t.Helper()
	s, err := identity.NewSource(c.Leaf(t, id), c.Mesh.Bundle)
	if err != nil {
		t.Fatalf("identitytest: source %s: %v", id, err)
	}
	return s
}
