package feed

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

// twoPorts is a valid export with two named ports.
func twoPorts() *feedpb.Export {
	e := exp("web", func(e *exports.Export) {
		e.Ports = []exports.Port{
			{Name: "http", Protocol: "TCP", Port: 80},
			{Name: "grpc", Protocol: "TCP", Port: 9090, AppProtocol: "kubernetes.io/h2c"},
		}
	})
	return toProto(&e)
}

// TestFromProtoValidatesPortsAsTheAPIServer: what the API server would
// refuse on the mirror Service or EndpointSlice is refused on receipt.
func TestFromProtoValidatesPortsAsTheAPIServer(t *testing.T) {
	rejected := map[string]func(*feedpb.Export){
		"name not a DNS label":        func(p *feedpb.Export) { p.Ports[0].Name = "HTTP" },
		"name with underscore":        func(p *feedpb.Export) { p.Ports[0].Name = "my_port" },
		"name too long":               func(p *feedpb.Export) { p.Ports[0].Name = strings.Repeat("a", 64) },
		"huge name":                   func(p *feedpb.Export) { p.Ports[0].Name = strings.Repeat("a", 1<<20) },
		"unnamed among two":           func(p *feedpb.Export) { p.Ports[1].Name = "" },
		"duplicate name":              func(p *feedpb.Export) { p.Ports[1].Name = "http" },
		"duplicate number":            func(p *feedpb.Export) { p.Ports[1].Port = 80 },
		"port 0":                      func(p *feedpb.Export) { p.Ports[0].Port = 0 },
		"negative port":               func(p *feedpb.Export) { p.Ports[0].Port = -1 },
		"port 65536":                  func(p *feedpb.Export) { p.Ports[0].Port = 65536 },
		"lowercase tcp":               func(p *feedpb.Export) { p.Ports[0].Protocol = "tcp" },
		"empty protocol":              func(p *feedpb.Export) { p.Ports[0].Protocol = "" },
		"appProtocol with space":      func(p *feedpb.Export) { p.Ports[1].AppProtocol = "h2 c" },
		"appProtocol two slashes":     func(p *feedpb.Export) { p.Ports[1].AppProtocol = "a/b/c" },
		"appProtocol name too long":   func(p *feedpb.Export) { p.Ports[1].AppProtocol = strings.Repeat("h", 64) },
		"appProtocol prefix too long": func(p *feedpb.Export) { p.Ports[1].AppProtocol = strings.Repeat("a", 254) + "/h2c" },
		"huge appProtocol":            func(p *feedpb.Export) { p.Ports[1].AppProtocol = strings.Repeat("h", 1<<20) },
		"too many ports": func(p *feedpb.Export) {
			p.Ports = nil
			for i := range exports.MaxPorts + 1 {
				p.Ports = append(p.Ports, &feedpb.Port{Name: fmt.Sprintf("p%d", i), Protocol: "TCP", Port: int32(i + 1)})
			}
		},
	}
	for name, mut := range rejected {
		t.Run(name, func(t *testing.T) {
			p := twoPorts()
			mut(p)
			_, err := fromProto(p)
			if !errors.Is(err, errInvalidExport) {
				t.Fatalf("accepted (%v)", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error echoes the input: %d bytes", len(err.Error()))
			}
		})
	}

	accepted := map[string]func(*feedpb.Export){
		"two named ports":      func(*feedpb.Export) {},
		"single unnamed port":  func(p *feedpb.Export) { p.Ports = []*feedpb.Port{{Protocol: "TCP", Port: 80}} },
		"plain appProtocol":    func(p *feedpb.Export) { p.Ports[1].AppProtocol = "http" },
		"port 65535":           func(p *feedpb.Export) { p.Ports[1].Port = 65535 },
		"longest name":         func(p *feedpb.Export) { p.Ports[0].Name = strings.Repeat("a", 63) },
		"numeric-looking name": func(p *feedpb.Export) { p.Ports[0].Name = "8080" },
	}
	for name, mut := range accepted {
		t.Run(name, func(t *testing.T) {
			p := twoPorts()
			mut(p)
			if _, err := fromProto(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReassemblerBoundsUpdateBytes: the chunks of one update together may
// not exceed MaxUpdateBytes, whatever their count; completed updates do not
// count against the next.
func TestReassemblerBoundsUpdateBytes(t *testing.T) {
	big := func(name string) *feedpb.Export {
		e := exp(name, func(e *exports.Export) {
			e.Annotations = map[string]string{"doc": strings.Repeat("x", 1000)}
		})
		return toProto(&e)
	}
	chunk := func(v uint64, snapshot, more bool, names ...string) *feedpb.ServerMessage {
		u := &feedpb.Update{Version: v, Snapshot: snapshot, More: more}
		for _, n := range names {
			u.Upserts = append(u.Upserts, big(n))
		}
		return &feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Update{Update: u}}
	}
	one := proto.Size(chunk(1, true, true, "a").GetUpdate())

	// Each update is under the limit; together they are over it.
	r := reassembler{max: DefaultMaxExports, maxBytes: 3 * one}
	for v := uint64(1); v <= 4; v++ {
		if _, _, err := r.add(chunk(v, v == 1, true, "a")); err != nil {
			t.Fatalf("update %d, first chunk: %v", v, err)
		}
		u, _, err := r.add(chunk(v, v == 1, false, "b"))
		if err != nil || u == nil || len(u.Upserts) != 2 {
			t.Fatalf("update %d: %v, %+v", v, err, u)
		}
	}

	// One update chunked past the limit is refused before it completes.
	r = reassembler{max: DefaultMaxExports, maxBytes: 3*one + 16} // names here are a byte longer
	for i := range 3 {
		if u, _, err := r.add(chunk(1, true, true, fmt.Sprintf("e%d", i))); err != nil || u != nil {
			t.Fatalf("chunk %d: %v, %v", i, u, err)
		}
	}
	_, _, err := r.add(chunk(1, true, false, "e3"))
	if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), "MaxUpdateBytes") {
		t.Fatalf("oversized update: %v", err)
	}
}

// TestClientRefusesUpdatesOverMaxUpdateBytes: a server whose snapshot,
// though well chunked and within MaxExports, exceeds the client's byte limit
// loses the stream and nothing of it is applied.
func TestClientRefusesUpdatesOverMaxUpdateBytes(t *testing.T) {
	const limit = 64 << 10
	f := newFixture(t, ServerOptions{MaxMessageBytes: limit})
	var es []exports.Export
	for i := range 400 {
		es = append(es, exp(fmt.Sprintf("e%03d", i), func(e *exports.Export) {
			e.Annotations = map[string]string{"doc": strings.Repeat("x", 1000)}
		}))
	}
	f.publish(es...) // ~400 KiB in about 7 chunks
	r := newRecorder()
	cfg := f.clientConfig(t, "west")
	cfg.MaxMessageBytes, cfg.MaxUpdateBytes = limit, 200<<10
	run(t, cfg, r, 0)
	r.wait(t, "refusal", func(r *recorder) bool { return len(r.disconnected) >= 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.disconnected {
		if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), "MaxUpdateBytes") {
			t.Fatalf("disconnect reason %v", err)
		}
	}
	if len(r.updates) != 0 || len(r.state) != 0 || r.connected < 2 {
		t.Fatalf("%d updates applied, %d exports, %d connects", len(r.updates), len(r.state), r.connected)
	}

	// With the default limit the same snapshot is taken whole.
	r2 := newRecorder()
	cfg.MaxUpdateBytes = 0
	run(t, cfg, r2, 0)
	r2.wait(t, "snapshot", func(r *recorder) bool { return len(r.updates) == 1 })
	if len(r2.state) != 400 {
		t.Fatalf("%d exports", len(r2.state))
	}
}

// A Service may list one number for TCP and UDP (DNS does): both arrive,
// the UDP one to be listed on the ServiceImport and carried by no gateway.
func TestFromProtoAcceptsUDPBesideTCP(t *testing.T) {
	p := twoPorts()
	p.Ports = append(p.Ports, &feedpb.Port{Name: "dns", Protocol: "UDP", Port: p.Ports[0].Port}, &feedpb.Port{Name: "sig", Protocol: "SCTP", Port: 7})
	e, err := fromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Ports) != 4 || e.Ports[2].Carried() || e.Ports[3].Carried() || !e.Ports[0].Carried() {
		t.Errorf("ports %+v", e.Ports)
	}
	p.Ports = append(p.Ports, &feedpb.Port{Name: "dns2", Protocol: "UDP", Port: p.Ports[0].Port})
	if _, err := fromProto(p); err == nil {
		t.Error("two UDP ports with one number were accepted")
	}
}
