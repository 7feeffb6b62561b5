package steering

import (
	"fmt"
	"strings"

	"ferry.dev/ferry/internal/contract"
)

// Affinity keywords. LocalKeyword stands for this cluster, whatever its
// name, so one ServiceImport manifest fits every cluster.
const (
	AffinityNone = "none"
	LocalKeyword = "local"
	// MaxAffinityBytes bounds the annotation; MaxClusters bounds the clusters
	// one policy names (the affinity's, and a route's backends).
	MaxAffinityBytes = 4096
	MaxClusters      = 256
)

// Affinity is a clusterset service's order of preference among its
// clusters, from the ServiceImport's ferry.dev/affinity annotation:
//
//	none                          every cluster alike (the default)
//	local                         this cluster while it can serve, then the rest
//	local > eu-west, eu-central   this cluster, then those two, then the rest
//	eu-west > us-east             tiers of named clusters, then the rest
//
// Tiers are separated by '>' and clusters within a tier by ','. A tier takes
// every new connection while one of its clusters can serve, split by the
// clusters' weights; clusters not named form a last tier, so the order can
// delay a cluster but never strand a connection. A trailing "*" names that
// last tier explicitly.
type Affinity struct {
	// Tiers in order; each a list of cluster names or LocalKeyword. Empty
	// for none.
	Tiers [][]string
}

// ParseAffinity reads the annotation. The empty string is none.
func ParseAffinity(s string) (Affinity, error) {
	if len(s) > MaxAffinityBytes {
		return Affinity{}, fmt.Errorf("affinity: %d bytes, over %d", len(s), MaxAffinityBytes)
	}
	s = strings.TrimSpace(s)
	if s == "" || s == AffinityNone {
		return Affinity{}, nil
	}
	var a Affinity
	seen := map[string]bool{}
	parts := strings.Split(s, ">")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "*" {
			if i != len(parts)-1 {
				return Affinity{}, fmt.Errorf("affinity %q: \"*\" (every other cluster) can only be the last tier", s)
			}
			break
		}
		var tier []string
		for _, c := range strings.Split(part, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				return Affinity{}, fmt.Errorf("affinity %q: tier %d has an empty cluster name", s, i+1)
			}
			if c == AffinityNone {
				return Affinity{}, fmt.Errorf("affinity %q: %q cannot be combined with tiers", s, AffinityNone)
			}
			if c != LocalKeyword {
				if err := contract.ValidateClusterName(c); err != nil {
					return Affinity{}, fmt.Errorf("affinity %q: %w", s, err)
				}
			}
			if seen[c] {
				return Affinity{}, fmt.Errorf("affinity %q: cluster %q is named twice", s, c)
			}
			seen[c] = true
			tier = append(tier, c)
		}
		a.Tiers = append(a.Tiers, tier)
	}
	if len(seen) > MaxClusters {
		return Affinity{}, fmt.Errorf("affinity: %d clusters, over %d", len(seen), MaxClusters)
	}
	return a, nil
}

// String is the annotation form: "none", or the tiers.
func (a Affinity) String() string {
	if len(a.Tiers) == 0 {
		return AffinityNone
	}
	tiers := make([]string, len(a.Tiers))
	for i, t := range a.Tiers {
		tiers[i] = strings.Join(t, ",")
	}
	return strings.Join(tiers, " > ")
}

// resolve replaces LocalKeyword by local, this cluster's name (or drops it
// when this cluster does not serve the service), keeps each cluster in its
// first tier only, and drops tiers left empty.
func (a Affinity) resolve(local string) [][]string {
	var out [][]string
	seen := map[string]bool{}
	for _, t := range a.Tiers {
		var tier []string
		for _, c := range t {
			if c == LocalKeyword {
				if local == "" {
					continue
				}
				c = local
			}
			// "local > eu-west" in eu-west names eu-west twice: its
			// first place is its tier.
			if seen[c] {
				continue
			}
			seen[c] = true
			tier = append(tier, c)
		}
		if len(tier) > 0 {
			out = append(out, tier)
		}
	}
	return out
}
