package fence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrFenced is returned, without sending, for a write made while the fence
// is closed: this process does not hold a lease it renewed recently enough.
var ErrFenced = errors.New("fence: not the leader, or the lease was not renewed in time: write refused")

// Fence tracks the last lease renewal this process made.
type Fence struct {
	// Window is how long after the start of a successful renewal writes
	// stay open: the leader elector's RenewDeadline, which must be shorter
	// than the LeaseDuration other replicas wait.
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	renewed time.Time // start of the last successful renewal; zero: never
}

// New returns a closed fence that opens for window after each renewal.
// now is injected for tests; nil is time.Now (whose monotonic reading is
// what the comparison uses, so wall-clock jumps do not matter).
func New(window time.Duration, now func() time.Time) (*Fence, error) {
	if window <= 0 {
		return nil, fmt.Errorf("fence: window %v must be positive", window)
	}
	if now == nil {
		now = time.Now
	}
	return &Fence{window: window, now: now}, nil
}

// Open reports whether writes may be sent now, and until when.
func (f *Fence) Open() (until time.Time, open bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewed.IsZero() {
		return time.Time{}, false
	}
	until = f.renewed.Add(f.window)
	return until, f.now().Before(until)
}

func (f *Fence) renewedAt(start time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if start.After(f.renewed) {
		f.renewed = start
	}
}

// Close shuts the fence at once: the process gave up the lease.
func (f *Fence) Close() {
	f.mu.Lock()
	f.renewed = time.Time{}
	f.mu.Unlock()
}

// Lock wraps the leader election's lock: every Create or Update of the
// lease that succeeds with this process as holder opens the fence from the
// moment the request started (the renewal cannot have been seen earlier by
// anyone), and a successful release closes it.
func (f *Fence) Lock(inner resourcelock.Interface) resourcelock.Interface {
	return &lock{Interface: inner, f: f}
}

type lock struct {
	resourcelock.Interface
	f *Fence
}

func (l *lock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	start := l.f.now()
	err := l.Interface.Create(ctx, rec)
	l.observe(start, rec, err)
	return err
}

func (l *lock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	start := l.f.now()
	err := l.Interface.Update(ctx, rec)
	l.observe(start, rec, err)
	return err
}

func (l *lock) observe(start time.Time, rec resourcelock.LeaderElectionRecord, err error) {
	switch {
	case err != nil:
	case rec.HolderIdentity == l.Identity():
		l.f.renewedAt(start)
	default:
		l.f.Close() // released (the elector writes an empty holder)
	}
}

// Transport wraps rt so that writes are refused while the fence is closed.
// A write that passes carries a deadline at the fence's close, so one stuck
// in a slow connection is cancelled rather than sent after another replica
// may lead. Reads, the Lease and Events always pass.
func (f *Fence) Transport(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{f: f, next: rt}
}

type roundTripper struct {
	f    *Fence
	next http.RoundTripper
}

func (r roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !Fenced(req.Method, req.URL.Path) {
		return r.next.RoundTrip(req)
	}
	until, open := r.f.Open()
	if !open {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, ErrFenced)
	}
	ctx, cancel := context.WithTimeout(req.Context(), until.Sub(r.f.now()))
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	// The body is read after RoundTrip returns; cancel when it is closed.
	resp.Body = cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Fenced reports whether a request is a write the fence governs: any
// method but GET, HEAD and OPTIONS, except to Leases of coordination.k8s.io
// (the election itself), Events of the core or events.k8s.io groups (a
// standby replica may still report what it sees), and the reviews of
// authorization.k8s.io and authentication.k8s.io (a POST that asks a
// question and stores nothing: whether this client may list a resource,
// asked before the manager starts). The resource is read
// from the path's structure, never matched by name, so a namespace or an
// object called "events" or "leases" is fenced like any other.
func Fenced(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	group, resource := resourceOf(path)
	switch {
	case group == "coordination.k8s.io" && resource == "leases":
		return false
	case resource == "events" && (group == "" || group == "events.k8s.io"):
		return false
	case (group == "authorization.k8s.io" || group == "authentication.k8s.io") && strings.HasSuffix(resource, "reviews"):
		return false
	}
	return true
}

// resourceOf reads the API group and resource of a Kubernetes API path:
// /api/v1/[namespaces/NS/]RESOURCE[/...] or
// /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/...]. A path of another
// shape has no resource ("").
func resourceOf(path string) (group, resource string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, rest = parts[1], parts[3:]
	default:
		return "", ""
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		return group, rest[2]
	}
	return group, rest[0]
}
