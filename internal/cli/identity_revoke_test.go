package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// revocationPKI is a root with issuers for north (whose Secret the test
// installs in the checked cluster) and east, and east's issuer.crt on disk.
type revocationPKI struct {
	root, north, east *identity.CA
	eastFile          string
}

func newRevocationPKI(t *testing.T) revocationPKI {
	t.Helper()
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := revocationPKI{root: root}
	for _, it := range []struct {
		name string
		ca   **identity.CA
	}{{checked, &p.north}, {exporter, &p.east}} {
		if *it.ca, err = root.NewIssuer(it.name, 0); err != nil {
			t.Fatal(err)
		}
	}
	p.eastFile = filepath.Join(t.TempDir(), "issuer.crt")
	if err := os.WriteFile(p.eastFile, p.east.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func getIssuerSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.IssuerSecret}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// `ferry identity revoke` writes the issuer's key into the cluster's deny
// list in a form the controller and gateway accept, is idempotent, refuses
// the cluster's own issuer, shows the list, and `unrevoke` takes it out.
func TestIdentityRevokeAgainstAPIServer(t *testing.T) {
	c := clusterClient(t, checked)
	ensureNamespace(t, c, contract.SystemNamespace)
	p := newRevocationPKI(t)
	create(t, c, issuerSecret(t, p.north, p.root))

	out := mustFerryOn(t, checked, "identity", "revoke", "--issuer-cert", p.eastFile)
	fp := identity.RevocationOf(p.east.Cert, "").Fingerprint()
	if !strings.Contains(out, "Revoked in ferry-system/ferry-issuer") || !strings.Contains(out, fp) || !strings.Contains(out, "cluster=east") {
		t.Errorf("revoke said:\n%s", out)
	}
	s := getIssuerSecret(t, c)
	bundle, err := certsecret.ParseTrust(s.Data, contract.DefaultMeshDomain)
	if err != nil {
		t.Fatalf("the controller would refuse what revoke wrote: %v", err)
	}
	if !bundle.IsRevoked(p.east.Cert) || bundle.IsRevoked(p.north.Cert) || len(bundle.Revoked()) != 1 {
		t.Fatalf("deny list: %+v", bundle.Revoked())
	}

	rv := s.ResourceVersion
	if out := mustFerryOn(t, checked, "identity", "revoke", "--issuer-cert", p.eastFile); !strings.Contains(out, "Nothing to change") {
		t.Errorf("second revoke said:\n%s", out)
	}
	if getIssuerSecret(t, c).ResourceVersion != rv {
		t.Error("an idempotent revoke wrote the Secret")
	}

	own := filepath.Join(t.TempDir(), "north.crt")
	if err := os.WriteFile(own, p.north.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = ferryOn(t, checked, "identity", "revoke", "--issuer-cert", own)
	oneLine(t, err, "this cluster's own issuer")

	var rep RevocationReport
	if err := json.Unmarshal([]byte(mustFerryOn(t, checked, "identity", "revoked", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Revoked) != 1 || rep.Revoked[0].Fingerprint != fp || rep.Context != checked {
		t.Errorf("revoked -o json: %+v", rep)
	}

	mustFerryOn(t, checked, "identity", "unrevoke", "--fingerprint", fp)
	if s := getIssuerSecret(t, c); len(s.Data[certsecret.RevokedKey]) != 0 {
		t.Errorf("unrevoke left %q", s.Data[certsecret.RevokedKey])
	}

	// A list that does not parse is never written over: what it said
	// would be lost.
	s = getIssuerSecret(t, c)
	s.Data[certsecret.RevokedKey] = []byte("sha256:hand-edited\n")
	if err := c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	_, _, err = ferryOn(t, checked, "identity", "revoke", "--issuer-cert", p.eastFile)
	oneLine(t, err, "revoked.txt")
	if got := string(getIssuerSecret(t, c).Data[certsecret.RevokedKey]); got != "sha256:hand-edited\n" {
		t.Errorf("malformed list overwritten with %q", got)
	}
}
