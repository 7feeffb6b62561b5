package feed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

func benchExports(n int) []exports.Export {
	es := make([]exports.Export, n)
	for i := range es {
		es[i] = exp(fmt.Sprintf("service-%05d", i), func(e *exports.Export) {
			e.Labels = map[string]string{"app": e.Name, "team": "payments"}
			e.Annotations = map[string]string{"example.com/owner": strings.Repeat("o", 40)}
			e.Ports = append(e.Ports, exports.Port{Name: "grpc", Protocol: "TCP", Port: 9090, AppProtocol: "kubernetes.io/h2c"})
		})
	}
	return es
}

// BenchmarkSnapshotEncode1k: converting and marshalling a 1k-export
// snapshot, as the server does per subscriber at (re)connect.
func BenchmarkSnapshotEncode1k(b *testing.B) {
	es := benchExports(1000)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		u := &feedpb.Update{Version: 1, Snapshot: true}
		for i := range es {
			u.Upserts = append(u.Upserts, toProto(&es[i]))
		}
		out, err := proto.Marshal(&feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Update{Update: u}})
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/snapshot")
}

// BenchmarkDeltaFanout: one export changed among 10k; each of 100
// subscribers computes its own filtered delta from the shared journal. The
// reported time is for all 100.
func BenchmarkDeltaFanout(b *testing.B) {
	const subscribers = 100
	es := benchExports(10000)
	p := exports.NewPublisher()
	j := newJournal(DefaultMaxHistory, time.Now())
	p.Publish(setOf(es...), nil)
	j.advance(p.Current())
	from, _ := j.view()
	changed := es[42]
	changed.ReadyEndpoints = 9
	p.Apply([]exports.Change{{Key: changed.Key, Export: &changed}})
	j.advance(p.Current())
	visible := make([]func(*exports.Export) bool, subscribers)
	for i := range visible {
		visible[i] = visibleTo(fmt.Sprint("c", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, vis := range visible {
			if _, ups, _, _, ok := j.delta(from, vis); !ok || len(ups) != 1 {
				b.Fatalf("delta: %d upserts, ok %v", len(ups), ok)
			}
		}
	}
}
