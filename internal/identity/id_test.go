package identity_test

import (
	"errors"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

func TestIDString(t *testing.T) {
	id := contract.GatewayID("ferry.local", "east")
	if got, want := id.String(), "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := id.TrustDomain(); got != "east.ferry.local" {
		t.Errorf("TrustDomain() = %q", got)
	}
	if got := contract.ControllerID("m.example", "west").String(); got != "spiffe://west.m.example/ns/ferry-system/sa/ferry-controller" {
		t.Errorf("ControllerID = %q", got)
	}
}

func TestParseID(t *testing.T) {
	ok := identity.ID{MeshDomain: "ferry.local", Cluster: "east", Namespace: "shop", ServiceAccount: "api.v2"}
	cases := []struct {
		uri, mesh string
		want      identity.ID
		err       error
	}{
		{"spiffe://east.ferry.local/ns/shop/sa/api.v2", "ferry.local", ok, nil},
		{"spiffe://east.ferry.local/ns/shop/sa/api.v2", "other.local", identity.ID{}, identity.ErrWrongMesh},
		{"spiffe://east.evil.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrWrongMesh},
		{"spiffe://ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrWrongMesh},
		{"spiffe://local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrWrongMesh},
		{"https://east.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrNotSPIFFE},
		{"east.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrNotSPIFFE},
		{"SPIFFE://east.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://EAST.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/api/extra", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/sa/api/ns/shop", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/Shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/api?x=1", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/api#frag", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://user@east.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local:443/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/../sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/a%2Fb/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east_1.ferry.local/ns/shop/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/a\x00b", "ferry.local", identity.ID{}, identity.ErrNULInSAN},
		{"spiffe://east.ferry.local/ns/shop/sa/api", "", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/" + strings.Repeat("a", 64) + "/sa/api", "ferry.local", identity.ID{}, identity.ErrInvalidID},
		{"spiffe://east.ferry.local/ns/shop/sa/" + strings.Repeat("a", identity.MaxIDLength), "ferry.local", identity.ID{}, identity.ErrInvalidID},
	}
	for _, tc := range cases {
		got, err := identity.ParseID(tc.uri, tc.mesh)
		if tc.err == nil && err != nil || !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseID(%q, %q) = %+v, %v; want %+v, %v", tc.uri, tc.mesh, got, err, tc.want, tc.err)
		}
	}
}

func TestParseIDInferMesh(t *testing.T) {
	got, err := identity.ParseIDInferMesh("spiffe://east.corp.example/ns/ferry-system/sa/ferry-gateway")
	if err != nil || got != contract.GatewayID("corp.example", "east") {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := identity.ParseIDInferMesh("spiffe://east/ns/a/sa/b"); !errors.Is(err, identity.ErrWrongMesh) {
		t.Errorf("single-label trust domain: %v", err)
	}
}

func TestIDValidate(t *testing.T) {
	if err := contract.GatewayID("ferry.local", "east").Validate(); err != nil {
		t.Error(err)
	}
	for _, id := range []identity.ID{
		{},
		{MeshDomain: "ferry.local", Cluster: "east.west", Namespace: "a", ServiceAccount: "b"},
		{MeshDomain: "ferry.local", Cluster: "east", Namespace: "a/sa/b", ServiceAccount: "c"},
		{MeshDomain: "Ferry.local", Cluster: "east", Namespace: "a", ServiceAccount: "b"},
		{MeshDomain: "ferry.local", Cluster: "-east", Namespace: "a", ServiceAccount: "b"},
	} {
		if err := id.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted an ID that would not round-trip", id)
		}
	}
}

// FuzzParseID checks that whatever ParseID accepts is a valid ID whose
// String() is the input, so no two URIs map to one identity.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
		"spiffe://east.ferry.local/ns/shop/sa/api.v2",
		"spiffe://east.ferry.local/ns/shop/sa/api/extra",
		"spiffe://east.ferry.local/ns/shop/sa/a\x00b",
		"spiffe://east.ferry.local/ns/a%00b/sa/c",
		"spiffe://east.ferry.local:1/ns/a/sa/b",
		"spiffe://u@east.ferry.local/ns/a/sa/b",
		"https://east.ferry.local/ns/a/sa/b",
		"spiffe:///ns/a/sa/b",
		"spiffe://east..ferry.local/ns/a/sa/b",
		"",
	} {
		f.Add(s, "ferry.local")
	}
	f.Add("spiffe://a.b.c/ns/x/sa/y", "b.c")
	f.Fuzz(func(t *testing.T, uri, mesh string) {
		id, err := identity.ParseID(uri, mesh)
		if err != nil {
			if !errors.Is(err, identity.ErrInvalidID) && !errors.Is(err, identity.ErrWrongMesh) &&
				!errors.Is(err, identity.ErrNotSPIFFE) && !errors.Is(err, identity.ErrNULInSAN) {
				t.Fatalf("ParseID(%q, %q) error %v matches no sentinel", uri, mesh, err)
			}
			return
		}
		if id.String() != uri {
			t.Fatalf("ParseID(%q) = %+v whose String() is %q", uri, id, id.String())
		}
		if id.MeshDomain != mesh {
			t.Fatalf("mesh %q, want %q", id.MeshDomain, mesh)
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted ID does not validate: %v", err)
		}
		inferred, err := identity.ParseIDInferMesh(uri)
		if err != nil || inferred != id {
			t.Fatalf("ParseIDInferMesh disagrees: %+v, %v", inferred, err)
		}
	})
}
