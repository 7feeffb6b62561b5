package feed

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
)

func TestConvertRoundTrip(t *testing.T) {
	e := exp("web", func(e *exports.Export) {
		e.Type, e.Hostnames = exports.Headless, []string{"web-0"}
		e.SessionAffinity, e.SessionAffinityTimeoutSeconds = "ClientIP", 30
		e.InternalTrafficPolicy, e.TrafficDistribution = "Local", "PreferClose"
		e.Labels = map[string]string{"app.kubernetes.io/name": "web"}
		e.Annotations = map[string]string{"example.com/doc": "any text"}
		e.AllowedClusters = []string{"west"}
		e.LocalPods = []exports.LocalPod{{Hostname: "web-0", Addresses: []string{"10.1.0.1"}}}
		e.LocalPorts = []exports.Port{{Name: "http", Protocol: "TCP", Port: 8080}}
	})
	wire, err := proto.Marshal(toProto(&e))
	if err != nil {
		t.Fatal(err)
	}
	var p feedpb.Export
	if err := proto.Unmarshal(wire, &p); err != nil {
		t.Fatal(err)
	}
	got, err := fromProto(&p)
	if err != nil {
		t.Fatal(err)
	}
	want := e
	want.AllowedClusters = nil // never sent
	want.LocalPods, want.LocalPorts = nil, nil
	if !got.Equal(&want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestFromProtoRejectsWhatTheImporterMustNotWrite(t *testing.T) {
	good := func() *feedpb.Export { e := exp("web"); return toProto(&e) }
	tests := map[string]func(*feedpb.Export){
		"bad namespace":      func(p *feedpb.Export) { p.Namespace = "Not_A_Namespace" },
		"bad name":           func(p *feedpb.Export) { p.Name = "1web" },
		"unknown type":       func(p *feedpb.Export) { p.Type = 0 },
		"unknown affinity":   func(p *feedpb.Export) { p.SessionAffinity = 9 },
		"no ports":           func(p *feedpb.Export) { p.Ports = nil },
		"QUIC port":          func(p *feedpb.Export) { p.Ports[0].Protocol = "QUIC" },
		"port out of range":  func(p *feedpb.Export) { p.Ports[0].Port = 70000 },
		"negative ready":     func(p *feedpb.Export) { p.ReadyEndpoints = -1 },
		"bad hostname":       func(p *feedpb.Export) { p.Hostnames = []string{"a.b"} },
		"bad traffic policy": func(p *feedpb.Export) { p.InternalTrafficPolicy = "Nearby" },
		"bad distribution":   func(p *feedpb.Export) { p.TrafficDistribution = "Prefer Close;" },
		"long distribution":  func(p *feedpb.Export) { p.TrafficDistribution = strings.Repeat("P", 64) },
		"forged owner label": func(p *feedpb.Export) { p.Labels = map[string]string{"ferry.dev/link": "x"} },
		"kube-proxy steering": func(p *feedpb.Export) {
			p.Annotations = map[string]string{"service.kubernetes.io/service-proxy-name": "x"}
		},
		"bad label value": func(p *feedpb.Export) { p.Labels = map[string]string{"a": "b c"} },
	}
	if _, err := fromProto(good()); err != nil {
		t.Fatalf("good export refused: %v", err)
	}
	for name, mut := range tests {
		t.Run(name, func(t *testing.T) {
			p := good()
			mut(p)
			if _, err := fromProto(p); !errors.Is(err, errInvalidExport) {
				t.Fatalf("accepted (%v)", err)
			}
		})
	}
}
