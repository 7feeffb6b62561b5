package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkloadControllers are the kube-controller-manager controllers a cluster
// needs so that what a test or a conformance suite creates behaves as it
// would in a real cluster: a namespace gets its default ServiceAccount (or
// pods are refused) and its deletion completes; Deployments, ReplicaSets and
// StatefulSets get pods; Services with selectors get EndpointSlices.
//
// Left out on purpose: the node controllers (there is no kubelet to send
// heartbeats, so they would evict every pod), the garbage collector (its
// discovery of every resource every 30 s costs more than a test cluster
// gains: namespace deletion removes what tests leave) and everything about
// volumes, certificates and tokens.
var WorkloadControllers = []string{
	"namespace-controller",
	"serviceaccount-controller",
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"endpointslice-controller",
}

// StartControllerManager runs the upstream kube-controller-manager against
// this cluster with the given controllers, inside the cluster's network
// namespace when it has one. It returns once the first namespace the manager
// serves has its default ServiceAccount, when the serviceaccount controller
// is among them, so callers may create pods right away.
func (c *Cluster) StartControllerManager(ctx context.Context, controllers []string) (*Process, error) {
	if c.controllerManager != nil && !c.controllerManager.exited() {
		return nil, fmt.Errorf("testenv: cluster %s already runs kube-controller-manager", c.Name)
	}
	bin := filepath.Join(c.bins, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("testenv: no kube-controller-manager in %s (run `make tools`): %w", c.bins, err)
	}
	p, err := startProcess(c.state, "kube-controller-manager", filepath.Join(c.Dir, "kube-controller-manager.log"),
		c.wrap(bin,
			"--kubeconfig="+c.Kubeconfig,
			"--controllers="+strings.Join(controllers, ","),
			// One manager per test cluster: nothing to elect.
			"--leader-elect=false",
			// Its own health and metrics port is not used by anything.
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--v=0",
		), nil)
	if err != nil {
		return nil, err
	}
	c.controllerManager = p
	for _, name := range controllers {
		if name == "serviceaccount-controller" {
			if err := c.waitDefaultServiceAccount(ctx, p); err != nil {
				p.stop(5 * time.Second)
				return nil, err
			}
		}
	}
	return p, nil
}

// waitDefaultServiceAccount waits until the default namespace has its
// default ServiceAccount: the sign that the manager's informers synced.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context, p *Process) error {
	ctx, cancel := context.WithTimeout(ctx, StartupTimeout)
	defer cancel()
	for {
		if p.exited() {
			return fmt.Errorf("kube-controller-manager exited during startup: %w\n%s", p.err, p.tail(15))
		}
		_, err := c.Kube.CoreV1().ServiceAccounts(corev1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager: no default ServiceAccount after %s (log: %s): %w\n%s", StartupTimeout, p.logPath, err, p.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
