package version

import "github.com/prometheus/client_golang/prometheus"

// BuildInfoMetric is the series every daemon exports with its build as
// labels and the value 1, the convention of Prometheus' own *_build_info:
// `ferry version` reads it from each running pod, because an image tag can
// name anything (latest, a bare commit from git describe --always) while
// the process knows what it was built from.
const BuildInfoMetric = "ferry_build_info"

// The labels of BuildInfoMetric.
const (
	LabelVersion   = "version"
	LabelRevision  = "revision"
	LabelGoVersion = "goversion"
)

// Collector reports BuildInfoMetric for this binary. The labels are read
// once: Version and Commit are set at link time and never change after.
func Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: BuildInfoMetric,
		Help: "1, with the version, git revision and Go version this binary was built from as labels.",
		ConstLabels: prometheus.Labels{
			LabelVersion:   Version,
			LabelRevision:  Revision(),
			LabelGoVersion: goVersion(),
		},
	}, func() float64 { return 1 })
}
