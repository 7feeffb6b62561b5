package feed

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

// FuzzFromProto decodes an export as a remote feed would send it. Whatever
// is accepted must survive the way back unchanged: what the importer
// builds mirrors from is exactly what was validated.
func FuzzFromProto(f *testing.F) {
	e := exports.TCP("shop", "web", 80, 443)
	e.SessionAffinity = "None"
	e.Labels = map[string]string{"app": "web"}
	e.ReadyEndpoints = 3
	seed, _ := proto.Marshal(toProto(&e))
	f.Add(seed)
	h := exports.TCP("db", "pg", 5432)
	h.Type, h.SessionAffinity, h.Hostnames = exports.Headless, "ClientIP", []string{"pg-0", "pg-1"}
	seed, _ = proto.Marshal(toProto(&h))
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p feedpb.Export
		if proto.Unmarshal(b, &p) != nil {
			return
		}
		got, err := fromProto(&p)
		if err != nil {
			return
		}
		again, err := fromProto(toProto(&got))
		if err != nil {
			t.Fatalf("an accepted export is refused after a round trip: %v", err)
		}
		if !again.Equal(&got) {
			t.Fatalf("round trip changed the export:\n%+v\n%+v", got, again)
		}
	})
}

// FuzzReassembler feeds a stream of server messages, as a hostile or broken
// server could send them. The client must never panic, never deliver an
// update over its entry or byte caps, and never move the version back.
func FuzzReassembler(f *testing.F) {
	e := exports.TCP("shop", "web", 80)
	e.SessionAffinity = "None"
	snap, _ := proto.Marshal(&feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Update{Update: &feedpb.Update{Version: 7, Snapshot: true, Upserts: []*feedpb.Export{toProto(&e)}}}})
	beat, _ := proto.Marshal(&feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Heartbeat{Heartbeat: &feedpb.Heartbeat{Version: 7}}})
	f.Add(snap, beat, snap)
	f.Add(beat, snap, beat)
	f.Fuzz(func(t *testing.T, m1, m2, m3 []byte) {
		r := &reassembler{max: 4, maxBytes: 4 << 10}
		var last uint64
		for _, b := range [][]byte{m1, m2, m3} {
			var m feedpb.ServerMessage
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			u, _, err := r.add(&m)
			if err != nil {
				return // the client drops the stream
			}
			if u == nil {
				continue
			}
			if n := len(u.Upserts) + len(u.Deletes); n > r.max {
				t.Fatalf("delivered %d entries over the cap of %d", n, r.max)
			}
			if u.Version < last {
				t.Fatalf("version moved back from %d to %d", last, u.Version)
			}
			last = u.Version
		}
	})
}
