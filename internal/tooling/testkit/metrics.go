package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// HistogramCount returns how many observations the histogram family holds
// in the series whose label has value (0 when there is none yet).
func HistogramCount(t testing.TB, g prometheus.Gatherer, family, label, value string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
