package controllerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/issuer"
)

// Files of a --tls-dir: the layout of a kubernetes.io/tls Secret with a
// ca.crt, as mounted into a pod.
const (
	tlsCertFile   = "tls.crt"
	tlsKeyFile    = "tls.key"
	tlsBundleFile = "ca.crt"
	// tlsRevokedFile is the deny list (certsecret.RevokedKey), optional.
	tlsRevokedFile = "revoked.txt"
	// tlsReloadInterval is how often a --tls-dir is checked for a rotated
	// certificate. Leaves live for hours and are renewed at two thirds of
	// their life, so a minute is ample and costs nothing.
	tlsReloadInterval = 30 * time.Second
)

// identitySource returns the controller's own identity and a check that
// says whether it is usable. With --tls-dir it is loaded from files (and
// reloaded); otherwise the in-process issuer issues it from the issuer
// Secret, and runs as a manager runnable.
func identitySource(o *Options, mgr manager.Manager, kube kubernetes.Interface) (*identity.Source, func() error, error) {
	if o.TLSDir != "" {
		l := &tlsDirLoader{dir: o.TLSDir, mesh: o.MeshDomain, want: contract.ControllerID(o.MeshDomain, o.ClusterName),
			src: &identity.Source{}, log: o.Logger}
		if err := l.load(); err != nil {
			return nil, nil, err
		}
		if err := mgr.Add(l); err != nil {
			return nil, nil, err
		}
		return l.src, func() error { return nil }, nil
	}
	iss, err := issuer.New(kube, issuer.Options{
		Cluster:      o.ClusterName,
		MeshDomain:   o.MeshDomain,
		Namespace:    contract.SystemNamespace,
		IssuerSecret: o.IssuerSecret,
		Elected:      mgr.Elected(),
		Registry:     o.Registry,
		Recorder:     mgr.GetEventRecorder(issuer.ReportingController),
		Logger:       o.Logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	if err := mgr.Add(iss); err != nil {
		return nil, nil, err
	}
	return iss.Controller(), iss.Ready, nil
}

// tlsDirLoader loads the controller's identity from a directory and
// reloads it when the files change (a rotated Secret volume).
type tlsDirLoader struct {
	dir, mesh string
	want      identity.ID
	src       *identity.Source
	log       *slog.Logger
	last      []byte
}

func (l *tlsDirLoader) load() error {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(l.dir, name)) }
	certPEM, err1 := read(tlsCertFile)
	keyPEM, err2 := read(tlsKeyFile)
	bundlePEM, err3 := read(tlsBundleFile)
	revoked, err4 := read(tlsRevokedFile)
	if errors.Is(err4, fs.ErrNotExist) {
		err4 = nil
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("--tls-dir: %w", err)
	}
	all := bytes.Join([][]byte{certPEM, keyPEM, bundlePEM, revoked}, []byte{0})
	if bytes.Equal(all, l.last) {
		return nil
	}
	cert, err := identity.ParseLeafPEM(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("--tls-dir %s: %w", l.dir, err)
	}
	bundle, err := certsecret.ParseTrust(map[string][]byte{certsecret.BundleKey: bundlePEM, certsecret.RevokedKey: revoked}, l.mesh)
	if err != nil {
		return fmt.Errorf("--tls-dir %s: %w", l.dir, err)
	}
	id, err := identity.IDFromCertificate(cert.Leaf, l.mesh)
	if err != nil {
		return fmt.Errorf("--tls-dir %s: %w", l.dir, err)
	}
	if id != l.want {
		return fmt.Errorf("--tls-dir %s holds %s, but this controller is %s", l.dir, id, l.want)
	}
	if err := l.src.SetCertificate(cert); err != nil {
		return fmt.Errorf("--tls-dir %s: %w", l.dir, err)
	}
	if err := l.src.SetBundle(bundle); err != nil {
		return fmt.Errorf("--tls-dir %s: %w", l.dir, err)
	}
	l.last = all
	l.log.Info("loaded controller identity", "dir", l.dir, "id", id.String(), "not_after", cert.Leaf.NotAfter)
	return nil
}

// Start reloads until ctx ends. A broken update is logged and the previous
// identity kept: a half-written volume must not take the importer down.
func (l *tlsDirLoader) Start(ctx context.Context) error {
	t := time.NewTicker(tlsReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.load(); err != nil {
				l.log.Warn("controller identity not reloaded; keeping the previous one", "err", err)
			}
		}
	}
}

func (l *tlsDirLoader) NeedLeaderElection() bool { return false }
