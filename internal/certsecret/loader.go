package certsecret

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// DefaultMetricLabel is the cert label of the loader's metrics.
const DefaultMetricLabel = "gateway"

// DefaultRecheckInterval is how often a Secret refused for a reason that
// time can change (not yet valid, expired) is checked again.
const DefaultRecheckInterval = 30 * time.Second

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
	// RecheckInterval bounds the wait before a Secret refused for a reason
	// that depends on the time (identity.ErrNotYetValid, ErrExpired) is
	// checked again without any change to it; the loader wakes earlier at
	// the chain's NotBefore. Default DefaultRecheckInterval.
	RecheckInterval time.Duration
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
	recheck  bool              // rejected was refused for a time-dependent reason
	lastErr  error
}

// Default sets every zero field to its default. NewLoader calls it: the
// loader owns its options.
func (o *Options) Default() {
	o.Namespace = cmp.Or(o.Namespace, contract.SystemNamespace)
	o.Name = cmp.Or(o.Name, contract.GatewayTLSSecret)
	o.MeshDomain = cmp.Or(o.MeshDomain, contract.DefaultMeshDomain)
	if o.Source == nil {
		o.Source = &identity.Source{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.RecheckInterval = cmp.Or(o.RecheckInterval, DefaultRecheckInterval)
	o.MetricLabel = cmp.Or(o.MetricLabel, DefaultMetricLabel)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// NewLoader prepares a loader; Start runs it.
func NewLoader(kube kubernetes.Interface, opts Options) (*Loader, error) {
	if kube == nil {
		return nil, errors.New("certsecret: no Kubernetes client")
	}
	opts.Default()
	if err := identity.ValidateMeshDomain(opts.MeshDomain); err != nil {
		return nil, fmt.Errorf("certsecret: %w", err)
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
		// A Secret refused because of the time is not cached as refused:
		// without a change to it, a timer brings the next pass.
		var retry <-chan time.Time
		var timer *time.Timer
		if d := l.sync(l.w.Secret()); d > 0 {
			timer = time.NewTimer(d)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case <-l.w.Changed():
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
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
// wrong with it leaves the current certificate and bundle untouched. It
// returns how long to wait before checking s again although it has not
// changed, or 0 for not until it changes: only a refusal that time can undo
// (not yet valid, expired) asks for that.
func (l *Loader) sync(s *corev1.Secret) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == nil {
		l.lastErr = errors.New("secret not found")
		if l.src.Certificate() != nil {
			l.log.Warn("certificate secret is gone; keeping the certificate in use")
		}
		return 0
	}
	fp := Fingerprint(s.Data)
	if fp == l.loaded || (fp == l.rejected && !l.recheck) {
		return 0 // e.g. only the condition annotation changed
	}
	cert, bundle, id, err := l.check(s.Data)
	if err != nil {
		again := fp == l.rejected // a recheck: logged and counted already
		l.rejected, l.lastErr = fp, err
		l.recheck = errors.Is(err, identity.ErrNotYetValid) || errors.Is(err, identity.ErrExpired)
		if again {
			l.log.Debug("certificate secret still refused", "resource_version", s.ResourceVersion, "err", err)
		} else {
			l.metrics.rejected.Inc()
			l.log.Error("refused certificate secret; keeping the certificate in use",
				"resource_version", s.ResourceVersion, "err", err)
		}
		if !l.recheck {
			return 0
		}
		return l.recheckAfter(s.Data)
	}
	// Parse already matched key and leaf, so this cannot fail today; it is
	// checked anyway so a future refusal in Source cannot go unnoticed. The
	// bundle goes second: it only verifies peers, and the old one is good
	// for the instant between the two stores.
	if err := l.src.SetCertificate(cert); err != nil {
		l.rejected, l.recheck, l.lastErr = fp, false, err
		l.log.Error("refused certificate secret", "err", err)
		return 0
	}
	_ = l.src.SetBundle(bundle)
	l.loaded, l.rejected, l.recheck, l.lastErr = fp, [sha256.Size]byte{}, false, nil
	l.metrics.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	l.log.Info("loaded certificate", "id", id.String(), "serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber),
		"not_after", cert.Leaf.NotAfter.UTC(), "roots", len(bundle.Roots()), "revoked", len(bundle.Revoked()), "resource_version", s.ResourceVersion)
	return 0
}

// recheckAfter is the wait before data, refused because of the time, is
// checked again: until the first NotBefore in its chain still ahead, if
// that is sooner than RecheckInterval, else RecheckInterval.
func (l *Loader) recheckAfter(data map[string][]byte) time.Duration {
	d := l.opts.RecheckInterval
	cert, _, err := Parse(data, l.opts.MeshDomain)
	if err != nil {
		return d
	}
	now := l.opts.Now()
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		if w := c.NotBefore.Sub(now); w > 0 && w < d {
			d = w
		}
	}
	return d
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
// ca.crt, revoked.txt), so that a change to labels or annotations alone can be told
// apart from a new certificate. Lengths are hashed too, so that moving
// bytes from one key to another changes it.
func Fingerprint(data map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range []string{CertKey, KeyKey, BundleKey, RevokedKey} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(data[k])))
		h.Write(data[k])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
