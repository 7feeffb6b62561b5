package cli

import (
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func hist(count uint64, buckets ...[2]float64) *dto.Histogram {
	h := &dto.Histogram{SampleCount: proto.Uint64(count)}
	for _, b := range buckets {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b[0]), CumulativeCount: proto.Uint64(uint64(b[1]))})
	}
	return h
}

func TestQuantile(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	cases := []struct {
		name string
		h    *dto.Histogram
		q    float64
		want time.Duration
		ok   bool
	}{
		{"empty", hist(0), 0.5, 0, false},
		{"nil", nil, 0.5, 0, false},
		// 100 samples: 50 under 1ms, 90 under 2ms, all under 4ms.
		{"p50 at a bucket edge", hist(100, [2]float64{.001, 50}, [2]float64{.002, 90}, [2]float64{.004, 100}), 0.5, ms(1), true},
		{"p70 interpolates inside 1-2ms", hist(100, [2]float64{.001, 50}, [2]float64{.002, 90}, [2]float64{.004, 100}), 0.7, ms(1.5), true},
		{"p99 interpolates inside 2-4ms", hist(100, [2]float64{.001, 50}, [2]float64{.002, 90}, [2]float64{.004, 100}), 0.99, ms(3.8), true},
		{"only +Inf above: lower bound", hist(10, [2]float64{.001, 5}, [2]float64{math.Inf(1), 10}), 0.99, ms(1), true},
		{"buckets out of order", hist(100, [2]float64{.004, 100}, [2]float64{.001, 50}, [2]float64{.002, 90}), 0.5, ms(1), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quantile(tc.h, tc.q)
			if ok != tc.ok || (got-tc.want).Abs() > time.Microsecond {
				t.Fatalf("quantile = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
