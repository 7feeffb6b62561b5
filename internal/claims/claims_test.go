package claims

import (
	"errors"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"ferry.dev/ferry/internal/mirror"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := map[int32]Claim{
		41001: {Owner: LinkOwner("east"), Namespace: "shop", Service: "cart-east", Port: 80},
		41000: {Owner: LinkOwner("east"), Namespace: "shop", Service: "cart-east", Port: 443},
		41499: {Owner: Clusterset, Namespace: strings.Repeat("n", 63), Service: strings.Repeat("s", 63), Port: 65535},
	}
	text := Encode(in)
	if !strings.HasPrefix(text, "41000 link/east shop cart-east 443\n41001 ") {
		t.Errorf("not in port order: %q", text)
	}
	out, err := Decode(41000, text)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(in, out) {
		t.Errorf("round trip: got %v, want %v", out, in)
	}
	if empty, err := Decode(41000, ""); err != nil || len(empty) != 0 {
		t.Errorf("empty shard: %v, %v", empty, err)
	}
}

func TestDecodeRefusesTheWholeShard(t *testing.T) {
	good := "41000 link/east shop cart-east 80\n"
	for name, line := range map[string]string{
		"outside the shard":   "41500 link/east shop a 80",
		"below the shard":     "40999 link/east shop a 80",
		"claimed twice":       "41000 link/east shop b 81",
		"four fields":         "41001 link/east shop a",
		"two spaces":          "41001  link/east shop a 80",
		"unknown owner":       "41001 tenant shop a 80",
		"empty link":          "41001 link/ shop a 80",
		"bad namespace":       "41001 link/east Shop a 80",
		"bad service":         "41001 link/east shop a.b 80",
		"port zero":           "41001 link/east shop a 0",
		"port too big":        "41001 link/east shop a 65536",
		"non-canonical port":  "041001 link/east shop a 80",
		"signed port":         "+41001 link/east shop a 80",
		"blank line":          "",
		"trailing whitespace": "41001 link/east shop a 80 ",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Decode(41000, good+line+"\n")
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decoded %v, err %v; want ErrMalformed", got, err)
			}
			if got != nil {
				t.Errorf("half a shard returned: %v", got)
			}
		})
	}
}

func TestFromConfigMapsKeepsBrokenShardsApart(t *testing.T) {
	cm := func(name, data string) *corev1.ConfigMap {
		c := &corev1.ConfigMap{Data: map[string]string{"claims": data}}
		c.Name = name
		return c
	}
	s := FromConfigMaps([]*corev1.ConfigMap{
		cm("ferry-ports-41000", "41000 link/east shop a 80\n"),
		cm("ferry-ports-41500", "garbage\n"),
		cm("ferry-ports-41001", "41001 link/east shop a 80\n"), // not a shard's name
		cm("other", "41002 link/east shop a 80\n"),
	})
	if len(s.Table) != 1 || !s.Table.Holds(41000, Claim{Owner: LinkOwner("east"), Namespace: "shop", Service: "a", Port: 80}) {
		t.Errorf("table = %v", s.Table)
	}
	if !s.Unusable(41777) || s.Unusable(41000) || len(s.Broken) != 1 {
		t.Errorf("broken = %v", s.Broken)
	}
	taken, _ := Split(s, LinkOwner("west"))
	if _, held := taken[41999]; !held {
		t.Error("a port of a broken shard is free to allocate")
	}
}

func TestPlanReleasesOnlyWhatIsGone(t *testing.T) {
	k := func(svc string, port int32) mirror.PortKey {
		return mirror.PortKey{Namespace: "shop", Service: svc, Port: port}
	}
	owner := LinkOwner("east")
	want := map[mirror.PortKey]int32{k("a", 80): 41000, k("new", 80): 41003}
	mine := map[mirror.PortKey]int32{k("a", 80): 41000, k("gone", 80): 41001, k("lingering", 80): 41002}
	gone := func(key mirror.PortKey, _ int32) bool { return key.Service == "gone" }
	ch, pending := Plan(owner, want, mine, gone)
	if pending != 1 {
		t.Errorf("pending = %d, want 1 (lingering)", pending)
	}
	if len(ch.Release) != 1 || ch.Release[0] != 41001 {
		t.Errorf("release = %v, want [41001]", ch.Release)
	}
	if len(ch.Set) != 2 || ch.Set[41003] != (Claim{Owner: owner, Namespace: "shop", Service: "new", Port: 80}) {
		t.Errorf("set = %v", ch.Set)
	}
}

func TestGone(t *testing.T) {
	k := mirror.PortKey{Namespace: "shop", Service: "a", Port: 80}
	svc := func(port, target int32) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: port, TargetPort: intstr.FromInt32(target)}}}}
	}
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, "a")
	for name, tc := range map[string]struct {
		svc  *corev1.Service
		err  error
		want bool
	}{
		"no Service":                    {&corev1.Service{}, notFound, true},
		"read failed":                   {&corev1.Service{}, errors.New("boom"), false},
		"still carries the port":        {svc(80, 41000), nil, false},
		"the port moved to another one": {svc(80, 41001), nil, true},
		"another port number":           {svc(81, 41000), nil, true},
	} {
		if got := Gone(tc.svc, tc.err, k, 41000); got != tc.want {
			t.Errorf("%s: Gone = %v, want %v", name, got, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(int32(41000), "41000 link/east shop a 80\n41001 clusterset shop web-clusterset 443\n")
	f.Add(int32(0), "1 link/x y z 1\n")
	f.Fuzz(func(t *testing.T, first int32, data string) {
		got, err := Decode(first, data)
		if err != nil {
			return
		}
		for p, c := range got {
			if p-p%500 != first {
				t.Fatalf("port %d outside shard %d", p, first)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted invalid claim %v: %v", c, err)
			}
		}
		again, err := Decode(first, Encode(got))
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}
