package certsecret

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the loader's series. The cert label is fixed by the caller's
// options, never taken from the Secret.
type metrics struct {
	expiry   prometheus.Gauge
	rejected prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, cert string) (*metrics, error) {
	labels := prometheus.Labels{"cert": cert}
	m := &metrics{
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ferry_certificate_expiry_timestamp_seconds",
			Help:        "NotAfter of the leaf certificate in use, as a Unix time.",
			ConstLabels: labels,
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "ferry_certificate_reload_rejected_total",
			Help:        "Versions of the certificate Secret that were refused (malformed, untrusted, wrong identity); the previous certificate stayed in use.",
			ConstLabels: labels,
		}),
	}
	if reg != nil {
		if err := errors.Join(reg.Register(m.expiry), reg.Register(m.rejected)); err != nil {
			return nil, fmt.Errorf("certsecret: register metrics: %w", err)
		}
	}
	return m, nil
}
