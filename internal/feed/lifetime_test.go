package feed

import (
	"testing"
	"time"

	"ferry.dev/ferry/internal/identity"
)

// When the importing controller's bundle drops the exporting gateway's
// root, its live feed connection closes within TrustCheckInterval and does
// not come back; another cluster's feed from the same gateway carries on.
func TestBundleChangeClosesFeedConnection(t *testing.T) {
	const trustCheck = 200 * time.Millisecond
	f := newFixture(t, ServerOptions{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: time.Second})
	f.publish(exp("a"))
	other := newFixtureMesh(t)
	both, err := identity.NewBundle(f.mesh.Domain, f.mesh.Root.Cert, other.Root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	west := f.mesh.Cluster(t, "west")
	src := west.Source(t, west.ControllerID())
	if err := src.SetBundle(both); err != nil {
		t.Fatal(err)
	}
	cfg := f.clientConfig(t, "west")
	cfg.TLS = src
	cfg.Lifetime.TrustCheckInterval = trustCheck
	rw, rn := newRecorder(), newRecorder()
	run(t, cfg, rw, 0)
	run(t, f.clientConfig(t, "north"), rn, 0)
	rw.wait(t, "west's snapshot", func(r *recorder) bool { return len(r.updates) > 0 })
	rn.wait(t, "north's snapshot", func(r *recorder) bool { return len(r.updates) > 0 })

	if err := src.SetBundle(other.Bundle); err != nil { // east's root is gone
		t.Fatal(err)
	}
	start := time.Now()
	rw.wait(t, "west's feed closed", func(r *recorder) bool { return len(r.disconnected) > 0 })
	if took := time.Since(start); took > trustCheck+2*time.Second {
		t.Fatalf("west's feed closed %v after the bundle change", took)
	}
	rn.mu.Lock()
	beats := len(rn.heartbeats)
	rn.mu.Unlock()
	rn.wait(t, "north's heartbeats", func(r *recorder) bool { return len(r.heartbeats) >= beats+3 })
	rw.mu.Lock()
	connected := rw.connected
	rw.mu.Unlock()
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if len(rn.disconnected) != 0 || rn.connected != 1 {
		t.Fatalf("north's feed dropped: %v", rn.disconnected)
	}
	if connected != 1 {
		t.Fatalf("west's feed reconnected %d times to a gateway it no longer trusts", connected-1)
	}
}
