package steering

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"ferry.dev/ferry/internal/contract"
)

// MaxWeight is the largest backend weight, as the Gateway API bounds it.
const MaxWeight = 1_000_000

// MaxPolicyBytes bounds the recorded policy annotation.
const MaxPolicyBytes = 16 << 10

// Policy is one clusterset service's resolved steering, as the controller
// records it on the clusterset Service. The zero Policy is the default:
// every cluster in one tier, weighed by its ready endpoints.
type Policy struct {
	// Route names the accepted route the weights come from, as
	// "Kind namespace/name"; empty for none.
	Route string
	// Weights are the route's weight per cluster, nil without a route. A
	// cluster the route does not name weighs 0.
	Weights map[string]uint32
	// Tiers are the affinity's tiers with "local" resolved to this
	// cluster's name; clusters in none form a last tier.
	Tiers [][]string
}

// IsDefault reports whether p is the zero Policy.
func (p Policy) IsDefault() bool { return p.Route == "" && p.Weights == nil && len(p.Tiers) == 0 }

// String is the annotation form, space-separated fields in a fixed order:
//
//	route=TCPRoute/shop/cart-split weights=east:90,west:10 tiers=west>east,north
//
// The default Policy is the empty string.
func (p Policy) String() string {
	var f []string
	if p.Route != "" {
		f = append(f, "route="+strings.ReplaceAll(p.Route, " ", "/"))
	}
	if p.Weights != nil {
		cs := make([]string, 0, len(p.Weights))
		for c := range p.Weights {
			cs = append(cs, c)
		}
		slices.Sort(cs)
		for i, c := range cs {
			cs[i] = c + ":" + strconv.FormatUint(uint64(p.Weights[c]), 10)
		}
		f = append(f, "weights="+strings.Join(cs, ","))
	}
	if len(p.Tiers) > 0 {
		ts := make([]string, len(p.Tiers))
		for i, t := range p.Tiers {
			ts[i] = strings.Join(t, ",")
		}
		f = append(f, "tiers="+strings.Join(ts, ">"))
	}
	return strings.Join(f, " ")
}

// ParsePolicy reads String's form back. It is the gateway's view of a
// Service any tenant of the namespace can write, so it checks everything;
// an error leaves the service on the default split.
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	if len(s) > MaxPolicyBytes {
		return Policy{}, fmt.Errorf("steering policy: %d bytes, over %d", len(s), MaxPolicyBytes)
	}
	seen := map[string]bool{}
	for _, field := range strings.Fields(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok || seen[k] {
			return Policy{}, fmt.Errorf("steering policy: field %q is not key=value, or repeats", field)
		}
		seen[k] = true
		switch k {
		case "route":
			kind, rest, ok := strings.Cut(v, "/")
			if !ok || kind == "" || rest == "" {
				return Policy{}, fmt.Errorf("steering policy: route %q is not Kind/namespace/name", v)
			}
			p.Route = kind + " " + rest
		case "weights":
			p.Weights = map[string]uint32{}
			for _, cw := range strings.Split(v, ",") {
				if cw == "" && v == "" {
					break // a route with no weight for any cluster
				}
				c, w, ok := strings.Cut(cw, ":")
				n, err := strconv.ParseUint(w, 10, 32)
				switch {
				case !ok || err != nil || n > MaxWeight:
					return Policy{}, fmt.Errorf("steering policy: weight %q is not cluster:0..%d", cw, MaxWeight)
				case contract.ValidateClusterName(c) != nil:
					return Policy{}, fmt.Errorf("steering policy: weight %q: %w", cw, contract.ValidateClusterName(c))
				}
				if _, dup := p.Weights[c]; dup {
					return Policy{}, fmt.Errorf("steering policy: cluster %q weighed twice", c)
				}
				p.Weights[c] = uint32(n)
			}
		case "tiers":
			named := map[string]bool{}
			for _, t := range strings.Split(v, ">") {
				var tier []string
				for _, c := range strings.Split(t, ",") {
					if err := contract.ValidateClusterName(c); err != nil {
						return Policy{}, fmt.Errorf("steering policy: tiers %q: %w", v, err)
					}
					if named[c] {
						return Policy{}, fmt.Errorf("steering policy: tiers %q name %q twice", v, c)
					}
					named[c] = true
					tier = append(tier, c)
				}
				p.Tiers = append(p.Tiers, tier)
			}
		default:
			return Policy{}, fmt.Errorf("steering policy: unknown field %q", k)
		}
	}
	if len(p.Weights) > MaxClusters || len(p.Tiers) > MaxClusters {
		return Policy{}, fmt.Errorf("steering policy: over %d clusters", MaxClusters)
	}
	return p, nil
}

// Cluster is what Apply knows of one of a service's clusters.
type Cluster struct {
	Name string
	// Ready is its count of ready endpoints: the exporting cluster's, as its
	// mirror records it, or this cluster's own.
	Ready uint32
}

// Share is one cluster's place in a service's split.
type Share struct {
	Cluster string
	// Configured is the route's weight, or -1 without a route.
	Configured int64
	// Weight is the share of new connections within its tier: the route's
	// weight, or without a route the ready endpoints; 0 when the cluster
	// has no ready endpoint.
	Weight uint32
	// Tier is the order of preference: a tier takes every new connection
	// while one of its clusters has weight (0 first).
	Tier int
}

// Apply computes each cluster's weight and tier under p, in the order of
// clusters.
func Apply(p Policy, clusters []Cluster) []Share {
	tierOf := map[string]int{}
	for i, t := range p.Tiers {
		for _, c := range t {
			if _, ok := tierOf[c]; !ok {
				tierOf[c] = i
			}
		}
	}
	out := make([]Share, len(clusters))
	for i, c := range clusters {
		s := Share{Cluster: c.Name, Configured: -1, Weight: c.Ready, Tier: len(p.Tiers)}
		if p.Weights != nil {
			s.Configured = int64(p.Weights[c.Name])
			s.Weight = p.Weights[c.Name]
		}
		if c.Ready == 0 {
			s.Weight = 0
		}
		if t, ok := tierOf[c.Name]; ok {
			s.Tier = t
		}
		out[i] = s
	}
	return out
}

// Expected is the share of new connections each cluster should take under
// shares, as the gateway splits them: the first tier whose weights are not
// all zero takes everything, in proportion to its weights; when no tier has
// weight, every cluster takes an even share. A cluster Apply left out
// (Configured 0) takes none.
func Expected(shares []Share) []float64 {
	out := make([]float64, len(shares))
	best, total := -1, uint64(0)
	for _, s := range shares {
		if s.Weight > 0 && (best < 0 || s.Tier < best) {
			best = s.Tier
		}
	}
	for _, s := range shares {
		if s.Tier == best {
			total += uint64(s.Weight)
		}
	}
	if best < 0 {
		n := 0
		for _, s := range shares {
			if s.Configured != 0 {
				n++
			}
		}
		for i, s := range shares {
			if s.Configured != 0 {
				out[i] = 1 / float64(n)
			}
		}
		return out
	}
	for i, s := range shares {
		if s.Tier == best {
			out[i] = float64(s.Weight) / float64(total)
		}
	}
	return out
}
