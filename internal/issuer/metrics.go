package issuer

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the cert label. They are fixed here, never taken from input.
const (
	certGateway    = "gateway"
	certController = "controller"
	certIssuer     = "issuer"
)

type metrics struct {
	expiry   *prometheus.GaugeVec   // cert: NotAfter, absent when there is none
	expiring *prometheus.GaugeVec   // cert: 1 while due, unrenewed, and under 1/6 of life left
	failures *prometheus.CounterVec // cert: renewal attempts that failed
	renewals *prometheus.CounterVec // cert: leaves issued
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the certificate, as a Unix time: the gateway leaf in its Secret, this replica's controller leaf, and the issuer. Absent while there is none.",
		}, []string{"cert"}),
		expiring: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ferry_certificate_expiring",
			Help: "1 while a leaf is due for renewal, could not be renewed, and has less than a sixth of its lifetime left (or has expired).",
		}, []string{"cert"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_certificate_renewal_failures_total",
			Help: "Renewals that were due and failed (issuer missing or invalid, signing or API write failed).",
		}, []string{"cert"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_certificate_renewals_total",
			Help: "Leaves issued.",
		}, []string{"cert"}),
	}
	for _, c := range []string{certGateway, certController} {
		// Start at zero so that rate() and alerts see the series at once.
		m.expiring.WithLabelValues(c)
		m.failures.WithLabelValues(c)
		m.renewals.WithLabelValues(c)
	}
	if reg != nil {
		if err := errors.Join(reg.Register(m.expiry), reg.Register(m.expiring),
			reg.Register(m.failures), reg.Register(m.renewals)); err != nil {
			return nil, fmt.Errorf("issuer: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) setExpiry(cert string, t time.Time) {
	if t.IsZero() {
		m.expiry.DeleteLabelValues(cert)
		return
	}
	m.expiry.WithLabelValues(cert).Set(float64(t.Unix()))
}

func (m *metrics) setExpiring(cert string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.expiring.WithLabelValues(cert).Set(v)
}
