package gateway

import (
	"math/bits"
	"slices"
	"sort"
)

// steer is a route's destinations as tiers: each a picker over the
// destinations of one Tier that take new connections, in Tier order. A tier
// whose weights are all zero (no ready endpoint there) has no picker; when
// every tier is so, one picker over all the destinations shares evenly, as
// a route without tiers does.
type steer struct {
	tiers []picker
	// n is the number of destinations in all tiers' orders together.
	n int
}

func newSteer(ds []Destination) steer {
	byTier := map[int][]int{}
	for i, d := range ds {
		byTier[d.Tier] = append(byTier[d.Tier], i)
	}
	levels := make([]int, 0, len(byTier))
	for t := range byTier {
		levels = append(levels, t)
	}
	slices.Sort(levels)
	var s steer
	for _, t := range levels {
		p := newWeightedPicker(ds, byTier[t], false)
		if p.total == 0 {
			continue
		}
		s.tiers = append(s.tiers, p)
		s.n += len(p.order)
	}
	if len(s.tiers) == 0 {
		p := newPicker(ds)
		s.tiers, s.n = []picker{p}, len(p.order)
	}
	return s
}

// picker chooses where each new connection of a route starts, in
// proportion to the destinations' weights, and gives the failover order
// after it. It is built once per route (SetRoutes) and read without a lock
// or an allocation on every connection.
type picker struct {
	// order holds the indexes of the destinations that take new
	// connections, in route order; cum their cumulative weights.
	order []int
	cum   []uint64
	total uint64
}

func newPicker(ds []Destination) picker {
	all := make([]int, len(ds))
	for i := range all {
		all[i] = i
	}
	return newWeightedPicker(ds, all, true)
}

// newWeightedPicker picks among ds[idx...]. When their weights are all zero,
// evenIfZero gives each an even share, and otherwise none takes any.
func newWeightedPicker(ds []Destination, idx []int, evenIfZero bool) picker {
	var p picker
	weighted := false
	for _, i := range idx {
		weighted = weighted || ds[i].Weight > 0
	}
	for _, i := range idx {
		d := ds[i]
		w := uint64(d.Weight)
		if !weighted && evenIfZero {
			w = 1 // nothing says otherwise: an even share each
		}
		if w == 0 {
			continue
		}
		p.total += w
		p.order = append(p.order, i)
		p.cum = append(p.cum, p.total)
	}
	return p
}

// start returns the position in order where the turn-th connection starts.
// turn·φ mod 2⁶⁴ (a Weyl sequence) is equidistributed with low discrepancy,
// so every window of consecutive connections splits close to the weights,
// interleaved rather than in blocks, and the split is exact to within a few
// connections over any run: deterministic, where a random choice would be
// off by its variance.
func (p *picker) start(turn uint64) int {
	if len(p.order) <= 1 {
		return 0
	}
	hi, _ := bits.Mul64(turn*0x9E3779B97F4A7C15, p.total) // in [0, total)
	if len(p.cum) <= 8 {
		for i, c := range p.cum {
			if hi < c {
				return i
			}
		}
	}
	return sort.Search(len(p.cum), func(i int) bool { return hi < p.cum[i] })
}
