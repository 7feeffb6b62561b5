package gatewayd

import (
	"testing"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/gateway"
)

// The rule for one egress caller, for a Service in namespace "shop".
func TestDecide(t *testing.T) {
	list := func(s string) contract.EgressCallers {
		c, err := contract.ParseEgressCallers(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		name    string
		synced  bool
		callers []string // namespaces of the pods with the caller's address
		host    bool     // the address is in --egress-host-callers
		wider   contract.EgressCallers
		want    string
	}{
		{name: "not synced refuses even a pod of the namespace", callers: []string{"shop"}, want: gateway.ReasonCallerNotSynced},
		{name: "not synced refuses a listed host", host: true, want: gateway.ReasonCallerNotSynced},
		{name: "a pod of the Service's namespace", synced: true, callers: []string{"shop"}, want: ""},
		{name: "a pod of another namespace", synced: true, callers: []string{"web"}, want: gateway.ReasonCallerNamespace},
		{name: "a pod of a namespace the annotation lists", synced: true, callers: []string{"web"}, wider: list("batch,web"), want: ""},
		{name: "a pod of a namespace the annotation does not list", synced: true, callers: []string{"dev"}, wider: list("batch,web"), want: gateway.ReasonCallerNamespace},
		{name: "any namespace with *", synced: true, callers: []string{"dev"}, wider: list("*"), want: ""},
		{name: "no pod has the address", synced: true, want: gateway.ReasonCallerNotPod},
		{name: "no pod, even with *", synced: true, wider: list("*"), want: gateway.ReasonCallerNotPod},
		{name: "no pod, a listed host", synced: true, host: true, want: ""},
		{name: "a listed host range does not widen what a pod may reach", synced: true, callers: []string{"web"}, host: true, want: gateway.ReasonCallerNamespace},
		{name: "two pods share the address, both allowed", synced: true, callers: []string{"shop", "web"}, wider: list("web"), want: ""},
		{name: "two pods share the address, one not allowed", synced: true, callers: []string{"shop", "web"}, want: gateway.ReasonCallerNamespace},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := decide(c.synced, c.callers, c.host, "shop", c.wider); got != c.want {
				t.Errorf("decide = %q, want %q", got, c.want)
			}
		})
	}
}
