package importer

import (
	"slices"
	"testing"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

// TestSummarizeMissingNamespaceLast: the first problem becomes the Synced
// reason, and `ferry check` only warns about NamespaceMissing, so a missing
// namespace must never be what hides a name clash or a full port range.
func TestSummarizeMissingNamespaceLast(t *testing.T) {
	ns := mirror.Problem{Export: exports.Key{Namespace: "shop", Name: "cart"}, Reason: mirror.NamespaceMissing}
	full := mirror.Problem{Export: exports.Key{Namespace: "default", Name: "db"}, Reason: mirror.PortsExhausted}
	clash := mirror.Problem{Export: exports.Key{Namespace: "default", Name: "web"}, Reason: mirror.NameClash, Object: "Service default/web-east"}
	noTCP := mirror.Problem{Export: exports.Key{Namespace: "default", Name: "dns"}, Reason: mirror.NoTCPPorts}
	for _, c := range []struct {
		in   []mirror.Problem
		want []mirror.Reason
	}{
		{[]mirror.Problem{ns, full}, []mirror.Reason{mirror.PortsExhausted, mirror.NamespaceMissing}},
		{[]mirror.Problem{noTCP, ns, clash}, []mirror.Reason{mirror.NameClash, mirror.NamespaceMissing, mirror.NoTCPPorts}},
		{[]mirror.Problem{ns}, []mirror.Reason{mirror.NamespaceMissing}},
	} {
		var got []mirror.Reason
		for _, p := range summarize(c.in, "east") {
			got = append(got, p.reason)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.in, got, c.want)
		}
	}
}
