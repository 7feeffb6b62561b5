package install

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/testenv"
)

// The API-server tests share one cluster, started on first use so that the
// pure tests (goldens, options) run without one.
var (
	envOnce   sync.Once
	envErr    error
	sharedEnv *testenv.Env
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		sharedEnv.Stop()
	}
	os.Exit(code)
}

// cluster returns the shared cluster. It starts empty: no CRDs, since
// installing them is part of what is tested.
func cluster(t *testing.T) *testenv.Cluster {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		sharedEnv, envErr = testenv.Start(ctx, testenv.Options{
			Clusters: []string{"install"}, AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
		})
	})
	if envErr != nil {
		t.Fatalf("testenv: %v", envErr)
	}
	return sharedEnv.Clusters[0]
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
