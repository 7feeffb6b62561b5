package gatewayd

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
)

// BenchmarkRoutes: one routes pass over n imports from one Link, each a
// mirror and a clusterset Service of one port. The route sync runs a pass
// per burst of changes, so this is what one change costs the importing
// gateway at n.
func BenchmarkRoutes(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("imports=%d", n), func(b *testing.B) {
			links := []*ferryv1.Link{link("east", "east", "", "")}
			mp, cp := contract.DefaultEgressRange(), contract.DefaultClustersetRange()
			svcs := make([]*corev1.Service, 0, 2*n)
			table := claims.Table{}
			for i := range n {
				name, mp, cp := fmt.Sprintf("svc-%05d", i), mp.Min+int32(i), cp.Min+int32(i)
				m, cs := mirrorSvc("ns", contract.MirrorName(name, "east"), "east", "east", name, port(80, mp)), clustersetSvc("ns", name, "east", port(80, cp))
				svcs = append(svcs, m, cs)
				table[mp] = claims.Claim{Owner: claims.LinkOwner("east"), Namespace: "ns", Service: m.Name, Port: 80}
				table[cp] = claims.Claim{Owner: claims.Clusterset, Namespace: "ns", Service: cs.Name, Port: 80}
			}
			b.ReportAllocs()
			for b.Loop() {
				if routes, problems := Routes(svcs, links, table, LocalExports{}, mp, cp); len(routes) != 2*n || len(problems) != 0 {
					b.Fatalf("%d routes, %d problems", len(routes), len(problems))
				}
			}
		})
	}
}
