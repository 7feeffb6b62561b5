package controllerd

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestTLSDirLoader(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "west")
	west := mesh.Cluster(t, "west")
	write := func(dir string, id identity.ID) {
		cert, key, err := identity.EncodeLeafPEM(west.Leaf(t, id))
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{tlsCertFile: cert, tlsKeyFile: key, tlsBundleFile: mesh.Bundle.PEM()} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	loader := func(dir string) *tlsDirLoader {
		return &tlsDirLoader{dir: dir, mesh: mesh.Domain, want: west.ControllerID(), src: &identity.Source{}, log: slog.New(slog.DiscardHandler)}
	}

	good := t.TempDir()
	write(good, west.ControllerID())
	l := loader(good)
	if err := l.load(); err != nil {
		t.Fatalf("load: %v", err)
	}
	if id, err := l.src.ID(); err != nil || id != west.ControllerID() || l.src.Bundle() == nil {
		t.Fatalf("source holds %v, %v", id, err)
	}
	// A rotated certificate is picked up; a broken one keeps the old.
	before := l.src.Certificate()
	write(good, west.ControllerID())
	if err := l.load(); err != nil || l.src.Certificate() == before {
		t.Fatalf("rotation not loaded: %v", err)
	}
	if err := os.WriteFile(filepath.Join(good, tlsKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	kept := l.src.Certificate()
	if err := l.load(); err == nil || l.src.Certificate() != kept {
		t.Fatalf("a broken key must fail and keep the previous identity: %v", err)
	}

	wrong := t.TempDir()
	write(wrong, west.GatewayID())
	if err := loader(wrong).load(); err == nil || !strings.Contains(err.Error(), "this controller is") {
		t.Fatalf("a gateway certificate must be refused: %v", err)
	}
	if err := loader(t.TempDir()).load(); err == nil {
		t.Fatal("an empty directory must be refused")
	}
}

// A --tls-dir carries the deny list as revoked.txt, as the Secret it is
// mounted from does; a malformed one keeps the list in force.
func TestTLSDirLoaderReadsDenyList(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "west", "east")
	west, east := mesh.Cluster(t, "west"), mesh.Cluster(t, "east")
	dir := t.TempDir()
	cert, key, err := identity.EncodeLeafPEM(west.Leaf(t, west.ControllerID()))
	if err != nil {
		t.Fatal(err)
	}
	list := identity.EncodeRevoked([]identity.Revocation{identity.RevocationOf(east.Issuer.Cert, "cluster=east")})
	for name, data := range map[string][]byte{tlsCertFile: cert, tlsKeyFile: key, tlsBundleFile: mesh.Bundle.PEM(), tlsRevokedFile: list} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := &tlsDirLoader{dir: dir, mesh: mesh.Domain, want: west.ControllerID(), src: &identity.Source{}, log: slog.New(slog.DiscardHandler)}
	if err := l.load(); err != nil {
		t.Fatal(err)
	}
	if !l.src.Bundle().IsRevoked(east.Issuer.Cert) {
		t.Fatal("deny list not loaded")
	}
	if err := os.WriteFile(filepath.Join(dir, tlsRevokedFile), []byte("sha256:bad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.load(); err == nil || !l.src.Bundle().IsRevoked(east.Issuer.Cert) {
		t.Fatalf("a malformed deny list must fail and keep the list in force: %v", err)
	}
}
