package benchpeer

import (
	"slices"
	"time"
)

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of d, which it
// sorts. Nearest rank never invents a latency nobody saw.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(q*float64(len(d)) + 0.999999999) // ceil without float surprises at exact ranks
	return d[min(max(i-1, 0), len(d)-1)]
}

// median of v (mean of the middle two when even); v is not modified.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
