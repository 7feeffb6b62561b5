package fence

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func TestFenced(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/v1/namespaces/shop/services/a", false},
		{"HEAD", "/api/v1/services", false},
		{"POST", "/api/v1/namespaces/shop/services", true},
		{"PUT", "/api/v1/namespaces/ferry-system/configmaps/ferry-ports-41000", true},
		{"PATCH", "/apis/ferry.dev/v1alpha1/namespaces/ferry-system/links/east/status", true},
		{"DELETE", "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/a-east", true},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/ferry-system/leases/ferry-controller", false},
		{"POST", "/apis/coordination.k8s.io/v1/namespaces/ferry-system/leases", false},
		{"POST", "/apis/events.k8s.io/v1/namespaces/shop/events", false},
		{"PATCH", "/api/v1/namespaces/shop/events/x", false},
		// Reviews ask and store nothing.
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", false},
		{"POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", false},
		{"POST", "/apis/authorization.k8s.io/v1/namespaces/shop/localsubjectaccessreviews", false},
		{"POST", "/api/v1/namespaces/shop/services/leases-east", true},
		// Names are not resources: a namespace or an object called
		// events or leases is fenced like any other.
		{"PUT", "/api/v1/namespaces/events/services/x", true},
		{"DELETE", "/api/v1/namespaces/leases/services/x", true},
		{"PUT", "/apis/multicluster.x-k8s.io/v1beta1/namespaces/shop/serviceimports/events", true},
		{"PUT", "/apis/ferry.dev/v1alpha1/namespaces/ferry-system/links/leases/status", true},
		{"POST", "/apis/example.com/v1/namespaces/shop/leases", true},
		{"POST", "/apis/example.com/v1/namespaces/shop/events", true},
		{"PATCH", "/api/v1/namespaces/events", true},
		{"POST", "/api/v1/events", false},
		{"POST", "/somewhere/else", true},
	} {
		if got := Fenced(tc.method, tc.path); got != tc.want {
			t.Errorf("Fenced(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// fakeLock is a resourcelock.Interface whose writes succeed or fail on
// demand.
type fakeLock struct {
	resourcelock.Interface
	fail error
}

func (l *fakeLock) Identity() string { return "me" }
func (l *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.fail
}
func (l *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	return l.fail
}

func TestOpensOnRenewalClosesAfterWindowAndOnRelease(t *testing.T) {
	now := time.Unix(1000, 0)
	f, err := New(10*time.Second, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if _, open := f.Open(); open {
		t.Fatal("open before any renewal")
	}
	inner := &fakeLock{}
	lock := f.Lock(inner)
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}
	if err := lock.Create(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	if until, open := f.Open(); !open || !until.Equal(now.Add(10*time.Second)) {
		t.Fatalf("after acquiring: open=%v until %v", open, until)
	}
	now = now.Add(9 * time.Second)
	inner.fail = errors.New("apiserver unreachable")
	_ = lock.Update(t.Context(), mine) // a failed renewal opens nothing
	if _, open := f.Open(); !open {
		t.Fatal("closed inside the window")
	}
	now = now.Add(time.Second)
	if _, open := f.Open(); open {
		t.Fatal("still open at the window's end without a renewal")
	}
	inner.fail = nil
	if err := lock.Update(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	if _, open := f.Open(); !open {
		t.Fatal("a renewal did not open it again")
	}
	if err := lock.Update(t.Context(), resourcelock.LeaderElectionRecord{}); err != nil {
		t.Fatal(err)
	}
	if _, open := f.Open(); open {
		t.Fatal("open after the lease was released")
	}
	if _, err := New(0, nil); err == nil {
		t.Error("a zero window was accepted")
	}
}

func TestTransportRefusesWritesWhileClosed(t *testing.T) {
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	now := time.Unix(1000, 0)
	f, err := New(time.Second, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: f.Transport(http.DefaultTransport)}
	do := func(method, path string) error {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := do("POST", "/api/v1/namespaces/a/services"); !errors.Is(err, ErrFenced) {
		t.Errorf("write while closed: %v, want ErrFenced", err)
	}
	if err := do("GET", "/api/v1/namespaces/a/services"); err != nil {
		t.Errorf("read while closed: %v", err)
	}
	if err := do("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"); err != nil {
		t.Errorf("lease write while closed: %v", err)
	}
	if n := reached.Load(); n != 2 {
		t.Errorf("%d requests reached the server, want 2 (the read and the lease)", n)
	}
	f.renewedAt(now)
	if err := do("POST", "/api/v1/namespaces/a/services"); err != nil {
		t.Errorf("write while open: %v", err)
	}
	if n := reached.Load(); n != 3 {
		t.Errorf("%d requests reached the server, want 3", n)
	}
}
