package fence_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/fence"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// Timing of the replicas in the test: short, so that a takeover takes
// seconds; the same proportions as the controller's (renew < lease).
const (
	testLease   = 4 * time.Second
	testRenew   = 2500 * time.Millisecond
	testRetry   = 250 * time.Millisecond
	leaseName   = "fence-test"
	writerLabel = "fence.test/writer"
)

var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"west"}}}

func TestMain(m *testing.M) {
	if os.Getenv("FENCE_TEST_REPLICA") != "" {
		os.Exit(replica())
	}
	shared.Main(m)
}

// replica is one leader-elected writer: while it leads it creates a
// ConfigMap every 20 ms through the fenced client, each labelled with its
// name, and it exits when it loses the lease. FENCE_TEST_UNFENCED runs it
// without the fence, to show the test fails then.
func replica() int {
	klog.SetLogger(logr.Discard())
	name, ns := os.Getenv("FENCE_TEST_REPLICA"), os.Getenv("FENCE_TEST_NAMESPACE")
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("FENCE_TEST_KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	f, err := fence.New(testRenew, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	writes := rest.CopyConfig(cfg)
	if os.Getenv("FENCE_TEST_UNFENCED") == "" {
		writes.Wrap(func(rt http.RoundTripper) http.RoundTripper { return f.Transport(rt) })
	}
	wc := kubernetes.NewForConfigOrDie(writes)
	lock := f.Lock(&resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: leaseName},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: name},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				for i := 0; ctx.Err() == nil; i++ {
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
						Namespace: ns, Name: fmt.Sprintf("%s-%d", name, i), Labels: map[string]string{writerLabel: name}}}
					_, _ = wc.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
					time.Sleep(20 * time.Millisecond)
				}
			},
			OnStoppedLeading: func() {},
		},
	})
	return 0
}

// TestStoppedLeaderWritesNothingAfterTakeover is issue 11, finding 8, with
// real processes: replica a leads and writes; it is stopped with SIGSTOP
// until replica b has taken the lease over and written too; then it is
// continued with SIGCONT. Whatever a had in hand, nothing of it may land
// after b took over: a's count of objects is the same before and after.
func TestStoppedLeaderWritesNothingAfterTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes and waits for a lease to expire; run without -short")
	}
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "fence")
	start := func(name string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FENCE_TEST_REPLICA="+name, "FENCE_TEST_NAMESPACE="+ns,
			"FENCE_TEST_KUBECONFIG="+c.Kubeconfig)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	holder := func() string {
		var l coordinationv1.Lease
		if err := c.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: leaseName}, &l); err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	written := func(name string) int {
		var list corev1.ConfigMapList
		if err := c.Client.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabels{writerLabel: name}); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}

	a := start("a")
	testkit.Eventually(t, "a leads and writes", func() bool { return holder() == "a" && written("a") > 0 })
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start("b")
	testkit.Eventually(t, "b takes over and writes", func() bool { return holder() == "b" && written("b") > 0 })
	before := written("a")
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// a finds out it lost the lease and exits; until then, whatever it
	// had in hand is refused at its fence.
	exited := make(chan error, 1)
	go func() { exited <- a.Wait() }()
	select {
	case <-exited:
	case <-time.After(testkit.Wait):
		t.Fatal("the resumed leader did not exit after losing its lease")
	}
	if after := written("a"); after != before {
		t.Errorf("the resumed old leader wrote %d objects after b took over", after-before)
	}
	if holder() != "b" {
		t.Errorf("lease holder %q, want b", holder())
	}
	t.Logf("a wrote %d objects before it was stopped, b %d so far", before, written("b"))
}
