package feed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/exports"
)

func TestSnapshotThenDeltas(t *testing.T) {
	f := newFixture(t, ServerOptions{HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour})
	a := exp("a", func(e *exports.Export) {
		e.Type, e.Hostnames = exports.Headless, []string{"a-0", "a-1"}
		e.Labels, e.Annotations = map[string]string{"team": "x"}, map[string]string{"doc": "y"}
		e.SessionAffinity, e.SessionAffinityTimeoutSeconds = "ClientIP", 60
	})
	f.publish(a, exp("north-only", only("north")))
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.HeartbeatTimeout = time.Minute // the server is silent between changes here
	run(t, cfg, r, 0)

	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	u := r.updates[0]
	if !u.Snapshot || len(u.Upserts) != 1 || r.connected != 1 {
		t.Fatalf("first update %+v", u)
	}
	want := a
	want.AllowedClusters = nil
	if got := u.Upserts[0]; !got.Equal(&want) {
		t.Fatalf("export changed in transit:\n got %+v\nwant %+v", got, want)
	}

	// A change: a delta with only that export, at a higher version.
	b := exp("b")
	f.publish(a, b, exp("north-only", only("north")))
	r.wait(t, "delta", func(r *recorder) bool { return len(r.updates) == 2 })
	if d := r.updates[1]; d.Snapshot || len(d.Upserts) != 1 || d.Upserts[0].Name != "b" || len(d.Deletes) != 0 || d.Version <= u.Version {
		t.Fatalf("delta %+v after version %d", d, u.Version)
	}
	// A delete.
	f.publish(b, exp("north-only", only("north")))
	r.wait(t, "delete", func(r *recorder) bool { return len(r.updates) == 3 })
	if d := r.updates[2]; len(d.Upserts) != 0 || len(d.Deletes) != 1 || d.Deletes[0].Name != "a" {
		t.Fatalf("delete delta %+v", d)
	}

	// Changes west may not see, and status-only changes, send west nothing.
	f.waitCounted(t, "west", kindDelta, 2)
	before := f.sent("west", kindDelta) + f.sent("west", kindHeartbeat)
	f.publish(b, exp("north-only", only("north"), func(e *exports.Export) { e.ReadyEndpoints = 7 }))
	f.pub.Publish(f.pub.Current().Map(), map[exports.Key]exports.Status{b.Key: {Key: b.Key}})
	f.publish(b, exp("north-only", only("north")))
	f.publish(b) // north-only unexported: west never knew it
	time.Sleep(200 * time.Millisecond)
	if after := f.sent("west", kindDelta) + f.sent("west", kindHeartbeat); after != before {
		t.Fatalf("west was sent %v messages for changes it may not see", after-before)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.updates) != 3 || len(r.state) != 1 {
		t.Fatalf("updates %d, state %v", len(r.updates), r.state)
	}
}

func TestReconnectResumesWithDeltas(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	var es []exports.Export
	for i := range 50 {
		es = append(es, exp(fmt.Sprint("e", i)))
	}
	f.publish(es...)
	r := newRecorder()
	stop := run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.state) == 50 })
	stop()
	resume := r.version

	// While the importer is away: one change, one add, one delete.
	es[0].ReadyEndpoints = 9
	es = append(es[:len(es)-1], exp("new"))
	f.publish(es...)

	r2 := newRecorder()
	r2.state = r.state
	run(t, f.clientConfig(t, "west"), r2, resume)
	r2.wait(t, "resumed delta", func(r *recorder) bool { return len(r.updates) == 1 })
	d := r2.updates[0]
	if d.Snapshot || len(d.Upserts) != 2 || len(d.Deletes) != 1 || d.Deletes[0].Name != "e49" {
		t.Fatalf("resume from %d: %+v", resume, d)
	}
	if len(r2.state) != 50 || r2.state[es[0].Key].ReadyEndpoints != 9 {
		t.Fatalf("state after resume: %d exports", len(r2.state))
	}
	// (The first stream may also have been sent the delta before the server
	// saw it go, so only snapshots are counted exactly.)
	f.waitCounted(t, "west", kindDelta, 1)
	if f.updates("west", kindSnapshot) != 1 || f.updates("west", kindDelta) < 1 {
		t.Fatalf("snapshots %v, deltas %v", f.updates("west", kindSnapshot), f.updates("west", kindDelta))
	}

	// Resuming at the current version costs one heartbeat and no update.
	r3 := newRecorder()
	run(t, f.clientConfig(t, "west"), r3, d.Version)
	r3.wait(t, "heartbeat", func(r *recorder) bool { return len(r.heartbeats) > 0 })
	if len(r3.updates) != 0 || r3.heartbeats[0] != d.Version {
		t.Fatalf("resume at current: updates %d, heartbeat %d want %d", len(r3.updates), r3.heartbeats[0], d.Version)
	}
}

func TestTooOldVersionGetsSnapshot(t *testing.T) {
	f := newFixture(t, ServerOptions{MaxHistory: 4})
	f.publish(exp("a"))
	r := newRecorder()
	stop := run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	stop()
	for i := range 10 {
		f.publish(exp("a", func(e *exports.Export) { e.ReadyEndpoints = int32(i + 2) }))
	}
	for _, resume := range []uint64{r.version, 12345} { // trimmed, and never issued
		r2 := newRecorder()
		stop := run(t, f.clientConfig(t, "west"), r2, resume)
		r2.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
		if u := r2.updates[0]; !u.Snapshot || len(u.Upserts) != 1 || u.Upserts[0].ReadyEndpoints != 11 {
			t.Fatalf("resume from %d: %+v", resume, u)
		}
		stop()
	}
}

func TestUnauthorizedCallersSeeNothing(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	f.publish(exp("a"), exp("west-excluded", only("north")))
	foreign := newFixtureMesh(t)
	tests := []struct {
		name    string
		cfg     func() ClientConfig
		wantErr string
	}{
		{"foreign root", func() ClientConfig {
			c := f.clientConfig(t, "west")
			c.TLS = foreign.Cluster(t, "west").Controller
			return c
		}, "certificate"},
		{"a gateway identity, not a controller", func() ClientConfig {
			c := f.clientConfig(t, "west")
			c.TLS = f.mesh.Cluster(t, "west").Gateway
			return c
		}, "PermissionDenied"},
		{"some other workload of a linked cluster", func() ClientConfig {
			c := f.clientConfig(t, "west")
			west := f.mesh.Cluster(t, "west")
			c.TLS = west.Source(t, west.ID("default", "app"))
			return c
		}, "PermissionDenied"},
		{"the exporter's own controller", func() ClientConfig { return f.clientConfig(t, "east") }, "PermissionDenied"},
		{"a server with the wrong identity", func() ClientConfig {
			c := f.clientConfig(t, "west")
			c.ServerID = f.mesh.Cluster(t, "north").GatewayID()
			return c
		}, "unexpected identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			stop := run(t, tc.cfg(), r, 0)
			r.wait(t, "refusal", func(r *recorder) bool { return len(r.disconnected) > 0 })
			stop()
			if len(r.updates) != 0 || r.connected != 0 {
				t.Fatalf("refused caller got %d updates, %d connects", len(r.updates), r.connected)
			}
			if err := r.disconnected[0]; !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q lacks %q", err, tc.wantErr)
			}
		})
	}
	// An excluded cluster subscribes fine but never sees the export.
	r := newRecorder()
	run(t, f.clientConfig(t, "west"), r, 0)
	r.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	if _, ok := r.state[exports.Key{Namespace: "ns", Name: "west-excluded"}]; ok || len(r.state) != 1 {
		t.Fatalf("west sees %v", r.state)
	}
	if got := f.metrics.Rejected.WithLabelValues(rejectForbidden); got == nil {
		t.Fatal("no rejection metric")
	}
}
