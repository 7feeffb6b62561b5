package claims_test

import (
	"errors"
	"maps"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testenv"
)

var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"west"}}}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	shared.Main(m)
}

// TestTwoWritersCannotClaimOnePort is issue 11, finding 2b: two controller
// replicas that both believe they lead (or two Links reconciling at once)
// decide from the same view of the record, and each wants egress port
// 41000 for a different mirror. Exactly one of them gets it; the other's
// write conflicts and nothing of it lands, whichever shard is created or
// updated.
func TestTwoWritersCannotClaimOnePort(t *testing.T) {
	c := shared.Cluster(t)
	ctx := t.Context()
	ns := c.TestNamespace(t, "claims")
	east := claims.Claim{Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "a-east", Port: 80}
	north := claims.Claim{Owner: claims.LinkOwner("north"), Namespace: "pay", Service: "b-north", Port: 80}

	for _, round := range []struct {
		name string
		port int32
	}{{"shard created by both", 41000}, {"shard updated by both", 41001}} {
		t.Run(round.name, func(t *testing.T) {
			view, err := claims.Read(ctx, c.Client, ns)
			if err != nil {
				t.Fatal(err)
			}
			errEast := claims.Commit(ctx, c.Client, ns, view, claims.Change{Set: map[int32]claims.Claim{round.port: east}})
			errNorth := claims.Commit(ctx, c.Client, ns, view, claims.Change{Set: map[int32]claims.Claim{round.port: north}})
			if errEast != nil {
				t.Fatalf("first writer: %v", errEast)
			}
			if !errors.Is(errNorth, claims.ErrConflict) {
				t.Fatalf("second writer from the same view: err = %v, want ErrConflict", errNorth)
			}
			after, err := claims.Read(ctx, c.Client, ns)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Table.Holds(round.port, east) {
				t.Errorf("port %d held by %+v, want %+v", round.port, after.Table[round.port], east)
			}
			// Read again, the second writer sees the port held, and is
			// refused before it writes anything.
			err = claims.Commit(ctx, c.Client, ns, after, claims.Change{Set: map[int32]claims.Claim{round.port: north}})
			if !errors.Is(err, claims.ErrConflict) {
				t.Errorf("claiming a held port: err = %v, want ErrConflict", err)
			}
		})
	}

	// Release then claim again: the port moves only through the record.
	view, err := claims.Read(ctx, c.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := claims.Commit(ctx, c.Client, ns, view, claims.Change{Release: []int32{41000}}); err != nil {
		t.Fatal(err)
	}
	view, err = claims.Read(ctx, c.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	if _, held := view.Table[41000]; held || !view.Table.Holds(41001, east) {
		t.Errorf("after release: %v", view.Table)
	}
	if err := claims.Commit(ctx, c.Client, ns, view, claims.Change{Set: map[int32]claims.Claim{41000: north}}); err != nil {
		t.Fatalf("claiming a released port: %v", err)
	}
}

// TestReaderSeesWhatReadSees: the Reader's decoding cache never shows a
// stale claim: after a claim, a release, a broken shard and a deleted one,
// it reads what an uncached Read reads.
func TestReaderSeesWhatReadSees(t *testing.T) {
	c := shared.Cluster(t)
	ctx := t.Context()
	ns := c.TestNamespace(t, "reader")
	var r claims.Reader
	same := func(step string) {
		t.Helper()
		want, err := claims.Read(ctx, c.Client, ns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Read(ctx, c.Client, ns)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got.Table, want.Table) || len(got.Broken) != len(want.Broken) {
			t.Fatalf("%s: Reader has %v (broken %v); Read has %v (broken %v)", step, got.Table, got.Broken, want.Table, want.Broken)
		}
	}
	a := claims.Claim{Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "a-east", Port: 80}
	b := claims.Claim{Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "b-east", Port: 80}
	commit := func(ch claims.Change) {
		t.Helper()
		view, err := claims.Read(ctx, c.Client, ns)
		if err != nil {
			t.Fatal(err)
		}
		if err := claims.Commit(ctx, c.Client, ns, view, ch); err != nil {
			t.Fatal(err)
		}
	}
	same("empty")
	commit(claims.Change{Set: map[int32]claims.Claim{41000: a, 42000: b}})
	same("two shards")
	commit(claims.Change{Release: []int32{41000}})
	same("after a release")
	// Nothing changed: the Reader hands out the Snapshot it built, index
	// and all, instead of merging every shard again.
	first, err := r.Read(ctx, c.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Read(ctx, c.Client, ns)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(first.Table).UnsafePointer() != reflect.ValueOf(again.Table).UnsafePointer() {
		t.Fatal("an unchanged record was merged again")
	}

	var cm corev1.ConfigMap
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: contract.PortClaimsName(42000)}, &cm); err != nil {
		t.Fatal(err)
	}
	cm.Data[contract.PortClaimsKey] = "not a claim"
	if err := c.Client.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	same("a broken shard")
	if err := c.Client.Delete(ctx, &cm); err != nil {
		t.Fatal(err)
	}
	same("a deleted shard")
}
