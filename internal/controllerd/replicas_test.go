package controllerd_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/controllerd"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// replica runs one controller replica named pod until its test ends or
// stop is called, and returns its admin address and stop.
func replica(t *testing.T, pod, issuerSecret string) (admin string, stop func()) {
	t.Helper()
	admin = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- controllerd.Run(ctx, controllerd.Options{
			RestConfig: west.RestConfig, ClusterName: "west", LeaderElect: true, PodName: pod,
			IssuerSecret: issuerSecret, MetricsAddr: admin, HealthAddr: admin, Registry: prometheus.NewRegistry(),
			Logger: slog.New(slog.DiscardHandler), SkipNameValidation: true,
		})
	}()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica %s: Run: %v", pod, err)
		}
	}
	t.Cleanup(stop)
	return admin, stop
}

func leaseHolder(ctx context.Context, t *testing.T) string {
	t.Helper()
	var l coordinationv1.Lease
	err := west.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.LeaderElectionID}, &l)
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestReplicas runs two replicas. The leader's lease names its pod; the
// standby turns ready without leading (it did not: its readiness waited for
// a leadership it never got); and a graceful stop releases the lease, so
// the standby leads within a few retries instead of the lease's 15 s.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	mesh := identitytest.NewMesh(t, "", "west")
	wi := mesh.Cluster(t, "west").Issuer
	key, err := wi.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := west.EnsureNamespace(ctx, contract.SystemNamespace); err != nil {
		t.Fatal(err)
	}
	const secret = "replicas-test-issuer"
	if _, err := west.Kube.CoreV1().Secrets(contract.SystemNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secret},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": wi.CertPEM(), "tls.key": key, "ca.crt": mesh.Bundle.PEM()},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	ready := func(admin string) func() bool {
		return func() bool { code, _ := get("http://" + admin + "/ready"); return code == http.StatusOK }
	}

	adminA, stopA := replica(t, "replica-a", secret)
	testkit.Eventually(t, "replica-a ready", ready(adminA))
	testkit.Eventually(t, "replica-a leads, by its pod name", func() bool { return leaseHolder(ctx, t) == "replica-a" })
	adminB, _ := replica(t, "replica-b", secret)
	testkit.Eventually(t, "replica-b (standby) ready", ready(adminB))
	if h := leaseHolder(ctx, t); h != "replica-a" {
		t.Fatalf("lease holder %q while replica-a runs, want replica-a", h)
	}

	stopped := time.Now()
	stopA()
	testkit.Eventually(t, "replica-b leads after replica-a's graceful stop", func() bool { return leaseHolder(ctx, t) == "replica-b" })
	// Without the release, replica-b waits out the lease: 15 s and more.
	if took := time.Since(stopped); took >= 15*time.Second {
		t.Errorf("replica-b led %s after replica-a stopped: the lease was not released", took)
	}
}
