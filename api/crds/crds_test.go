package crds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"ferry.dev/ferry/api/crds"
	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// The schema's validation is part of the API: a real API server must accept a
// good Link and refuse each malformed one with a message naming the field.
func TestLinkSchemaValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters:    []string{"west"},
		CRDs:        crds.All(),
		AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	c := env.Clusters[0]
	if err := c.EnsureNamespace(ctx, "ferry-system"); err != nil {
		t.Fatal(err)
	}
	good := func() *ferryv1.Link {
		return &ferryv1.Link{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ferry-system", Name: "east"},
			Spec: ferryv1.LinkSpec{
				ClusterName:      "east",
				GatewayAddresses: []string{"198.19.0.12:4143"},
				GatewayIdentity:  "spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway",
			},
		}
	}
	cases := []struct {
		name    string
		mutate  func(*ferryv1.Link)
		wantErr string
	}{
		{"upper-case cluster name", func(l *ferryv1.Link) { l.Spec.ClusterName = "East" }, "spec.clusterName"},
		{"no gateway address", func(l *ferryv1.Link) { l.Spec.GatewayAddresses = nil }, "spec.gatewayAddresses"},
		{"address without port", func(l *ferryv1.Link) { l.Spec.GatewayAddresses = []string{"198.19.0.12"} }, "spec.gatewayAddresses[0]"},
		{"identity not SPIFFE", func(l *ferryv1.Link) { l.Spec.GatewayIdentity = "https://east/gw" }, "spec.gatewayIdentity"},
		{"zero failure threshold", func(l *ferryv1.Link) { l.Spec.Probe.FailureThreshold = new(int32) }, "spec.probe.failureThreshold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := good()
			l.Name = "bad"
			tc.mutate(l)
			err := c.Client.Create(ctx, l)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
		})
	}

	l := good()
	if err := c.Client.Create(ctx, l); err != nil {
		t.Fatalf("valid Link refused: %v", err)
	}
	l.Spec.ClusterName = "north"
	if err := c.Client.Update(ctx, l); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("changing clusterName: want an immutable error, got %v", err)
	}
}
