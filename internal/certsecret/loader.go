package certsecret

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/names"
)

// DefaultSecretName is the gateway's leaf Secret (docs/contracts.md).
const DefaultSecretName = "ferry-gateway-tls"

// DefaultMetricLabel is the cert label of the loader's metrics.
const DefaultMetricLabel = "gateway"

// Options configure a Loader. Zero values mean the defaults.
type Options struct {
	// Namespace and Name locate the Secret. Default ferry-system/ferry-gateway-tls.
	Namespace, Name string
	// MeshDomain is the mesh whose bundle ca.crt holds. Default ferry.local.
	MeshDomain string
	// Expect, if set, is the only identity the leaf may carry (the gateway's
	// own), so a Secret holding some other leaf is refused.
	Expect identity.ID
	// Source receives each good version. Default a new, empty Source.
	Source *identity.Source
	// Now is the clock for validity checks. Default time.Now.
	Now func() time.Time
	// Registry receives the metrics. Nil registers nothing.
	Registry prometheus.Registerer
	// MetricLabel is the cert label value. Default "gateway".
	MetricLabel string
	Logger      *slog.Logger
}

// Loader keeps an identity.Source in step with a TLS Secret.
type Loader struct {
	opts    Options
	w       *Watcher
	src     *identity.Source
	metrics *metrics
	log     *slog.Logger

	mu       sync.Mutex
	loaded   [sha256.Size]byte // fingerprint of the data in use
	rejected [sha256.Size]byte // of the last refused data, to log it once
	lastErr  error
}

// NewLoader prepares a loader; Start runs it.
func NewLoader(kube kubernetes.Interface, opts Options) (*Loader, error) {
	if kube == nil {
		return nil, errors.New("certsecret: no Kubernetes client")
	}
	if opts.Namespace == "" {
		opts.Namespace = names.SystemNamespace
	}
	if opts.Name == "" {
		opts.Name = DefaultSecretName
	}
	if opts.MeshDomain == "" {
		opts.MeshDomain = identity.DefaultMeshDomain
	}
	if err := identity.ValidateMeshDomain(opts.MeshDomain); err != nil {
		return nil, fmt.Errorf("certsecret: %w", err)
	}
	if opts.Source == nil {
		opts.Source = &identity.Source{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MetricLabel == "" {
		opts.MetricLabel = DefaultMetricLabel
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registry, opts.MetricLabel)
	if err != nil {
		return nil, err
	}
	return &Loader{
		opts:    opts,
		w:       NewWatcher(kube, opts.Namespace, opts.Name),
		src:     opts.Source,
		metrics: m,
		log:     opts.Logger.With("secret", opts.Namespace+"/"+opts.Name),
	}, nil
}

// Source is the Source the loader fills. Hand it to TLS configs before
// Start: they read it on every handshake.
func (l *Loader) Source() *identity.Source { return l.src }

// Start watches the Secret until ctx ends (controller-runtime's Runnable).
func (l *Loader) Start(ctx context.Context) error {
	l.w.Start(ctx)
	if err := l.w.WaitForSync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for {
		l.sync(l.w.Secret())
		select {
		case <-ctx.Done():
			return nil
		case <-l.w.Changed():
		}
	}
}

// Run is Start, for callers that are not controller-runtime managers.
func (l *Loader) Run(ctx context.Context) error { return l.Start(ctx) }

// NeedLeaderElection is false: every gateway replica serves.
func (l *Loader) NeedLeaderElection() bool { return false }

// Ready returns nil once a certificate is loaded and still valid, or why
// not; it is meant for the gateway's /ready.
func (l *Loader) Ready() error {
	c := l.src.Certificate()
	if c == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case l.lastErr != nil:
			return fmt.Errorf("no certificate loaded from %s/%s: %w", l.opts.Namespace, l.opts.Name, l.lastErr)
		case !l.w.HasSynced():
			return fmt.Errorf("no certificate loaded: secret %s/%s not listed yet", l.opts.Namespace, l.opts.Name)
		}
		return fmt.Errorf("no certificate loaded from %s/%s", l.opts.Namespace, l.opts.Name)
	}
	if now := l.opts.Now(); !now.Before(c.Leaf.NotAfter) {
		return fmt.Errorf("certificate expired at %s: %w", c.Leaf.NotAfter.UTC().Format(time.RFC3339), identity.ErrExpired)
	}
	return nil
}

// sync loads s if it differs from what is in use and is valid. Anything
// wrong with it leaves the current certificate and bundle untouched.
func (l *Loader) sync(s *corev1.Secret) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == nil {
		l.lastErr = errors.New("secret not found")
		if l.src.Certificate() != nil {
			l.log.Warn("certificate secret is gone; keeping the certificate in use")
		}
		return
	}
	fp := Fingerprint(s.Data)
	if fp == l.loaded || fp == l.rejected {
		return // e.g. only the condition annotation changed
	}
	cert, bundle, id, err := l.check(s.Data)
	if err != nil {
		l.rejected, l.lastErr = fp, err
		l.metrics.rejected.Inc()
		l.log.Error("refused certificate secret; keeping the certificate in use",
			"resourceVersion", s.ResourceVersion, "err", err)
		return
	}
	// Parse already matched key and leaf, so this cannot fail today; it is
	// checked anyway so a future refusal in Source cannot go unnoticed. The
	// bundle goes second: it only verifies peers, and the old one is good
	// for the instant between the two stores.
	if err := l.src.SetCertificate(cert); err != nil {
		l.rejected, l.lastErr = fp, err
		l.log.Error("refused certificate secret", "err", err)
		return
	}
	_ = l.src.SetBundle(bundle)
	l.loaded, l.rejected, l.lastErr = fp, [sha256.Size]byte{}, nil
	l.metrics.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	l.log.Info("loaded certificate", "id", id.String(), "serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber),
		"notAfter", cert.Leaf.NotAfter.UTC(), "roots", len(bundle.Roots()), "resourceVersion", s.ResourceVersion)
}

func (l *Loader) check(data map[string][]byte) (*tls.Certificate, *identity.Bundle, identity.ID, error) {
	cert, bundle, err := Parse(data, l.opts.MeshDomain)
	if err != nil {
		return nil, nil, identity.ID{}, err
	}
	id, err := Verify(cert, bundle, l.opts.Expect, l.opts.Now)
	if err != nil {
		return nil, nil, identity.ID{}, err
	}
	return cert, bundle, id, nil
}

// Fingerprint identifies the TLS content of a Secret (tls.crt, tls.key,
// ca.crt), so that a change to labels or annotations alone can be told
// apart from a new certificate. Lengths are hashed too, so that moving
// bytes from one key to another changes it.
func Fingerprint(data map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range []string{CertKey, KeyKey, BundleKey} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(data[k])))
		h.Write(data[k])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
