package install

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/testenv"
)

// The API-server tests share one cluster, started on first use so that the
// pure tests (goldens, options) run without one. It starts empty: no CRDs,
// since installing them is part of what is tested.
var shared = testenv.Lazy{Options: testenv.Options{
	Clusters: []string{"install"}, AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
}}

func TestMain(m *testing.M) { shared.Main(m) }

// cluster returns the shared cluster.
func cluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	return shared.Get(t).Clusters[0]
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
