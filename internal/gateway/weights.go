package gateway

import (
	"math/bits"
	"sort"
)

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
	var p picker
	weighted := false
	for _, d := range ds {
		weighted = weighted || d.Weight > 0
	}
	for i, d := range ds {
		w := uint64(d.Weight)
		if !weighted {
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
