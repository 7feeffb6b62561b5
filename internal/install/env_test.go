package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// The API-server tests share one cluster, started on first use so that the
// pure tests (goldens, options) run without one. It starts empty: no CRDs,
// since installing them is part of what is tested.
var shared = testenv.Lazy{Options: testenv.Options{
	Clusters: []string{"install"}, AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
}}

func TestMain(m *testing.M) { shared.Main(m) }
