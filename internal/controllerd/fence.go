package controllerd

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/fence"
)

// Leader election timing (controller-runtime's defaults, made explicit
// because the fence depends on them): another replica takes over no sooner
// than leaseDuration after the last renewal it saw, and the leader stops
// writing renewDeadline after its last successful renewal, leaving
// leaseDuration − renewDeadline for a write already sent to land first.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// fenceWrites returns a copy of cfg whose writes pass a fence that the
// leader lock in mo opens on each renewal (internal/fence).
func fenceWrites(cfg *rest.Config, mo *manager.Options) (*rest.Config, error) {
	f, err := fence.New(renewDeadline, nil)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("leader election identity: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, contract.SystemNamespace, contract.LeaderElectionID,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	mo.LeaderElectionResourceLockInterface = f.Lock(lock)
	fenced := rest.CopyConfig(cfg)
	fenced.Wrap(func(rt http.RoundTripper) http.RoundTripper { return f.Transport(rt) })
	return fenced, nil
}
