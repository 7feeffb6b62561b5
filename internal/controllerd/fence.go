package controllerd

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/fence"
)

// Leader election timing. The lease and renew deadline are
// controller-runtime's defaults, made explicit because the fence depends on
// them: another replica takes over no sooner than leaseDuration after the
// last renewal it saw, and the leader stops writing renewDeadline after its
// last successful renewal, leaving leaseDuration − renewDeadline for a
// write already sent to land first.
//
// The retry period is half the default. client-go's standby polls the
// lease every retryPeriod × (1 + 1.2 jitter) and counts the lease from when
// it first saw the last renewal, so a takeover comes at most
// leaseDuration + 2 × 2.2 × retryPeriod after a leader stalls: 19.4 s here,
// 23.8 s with 2 s (docs/reliability.md, R5). The price is one lease renewal
// a second instead of one every two.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = time.Second
)

// fenceWrites returns a copy of cfg whose writes pass a fence that the
// leader lock in mo opens on each renewal (internal/fence). The lock's
// identity is the replica's name: in a pod, its pod name, which a process
// restarted in the same pod keeps. client-go's elector renews a lease whose
// holder is itself at once, so after a crash the restarted process leads
// again within one retry instead of waiting out the lease its predecessor
// held (15 s). Two live processes never share a pod name: the kubelet
// stops a container before it starts its replacement.
func fenceWrites(cfg *rest.Config, mo *manager.Options, replica string) (*rest.Config, error) {
	f, err := fence.New(renewDeadline, nil)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, contract.SystemNamespace, contract.LeaderElectionID,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: replica})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	mo.LeaderElectionResourceLockInterface = f.Lock(lock)
	fenced := rest.CopyConfig(cfg)
	fenced.Wrap(func(rt http.RoundTripper) http.RoundTripper { return f.Transport(rt) })
	return fenced, nil
}
