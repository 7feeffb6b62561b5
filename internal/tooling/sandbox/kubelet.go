package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// lastPodAddr is the last host number of a cluster's pod network
// (198.18.<site>.0/24); past it the kubelet leaves pods Pending.
const lastPodAddr = 254

// kubelet plays the scheduler and the kubelet of a Workloads sandbox for
// the pods that no one has placed, which is every pod that Deployments,
// StatefulSets and tests create: it binds each to the cluster's one Node,
// gives it an address on the cluster's pod network and reports it Running
// and Ready, and it completes the deletion of pods on its Node, as a kubelet
// confirms a graceful delete. It runs no containers: nothing listens on
// those addresses (Workload's listeners are the sandbox's serving pods).
//
// ferry-system is left alone: Ferry's own daemons run as processes at the
// gateway pod's address (publishPods), and a second, empty copy of each from
// its Deployment would only add addresses that answer nothing.
type kubelet struct {
	c    *Cluster
	node string
	q    workqueue.TypedRateLimitingInterface[string]
	pods toolscache.Indexer
	log  *slog.Logger
	// addrs keeps each pod's address (by UID) across retries of its
	// status write, so a retry does not spend another address. Only the
	// run goroutine uses it.
	addrs map[types.UID]string
}

// startWorkloads starts kube-controller-manager's workload controllers and
// the kubelet stand-in, and returns once both serve.
func (c *Cluster) startWorkloads(ctx context.Context) error {
	k := &kubelet{
		c: c, node: c.Name + "-node",
		q:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		log:   slog.Default().With("cluster", c.Name, "component", "sandbox-kubelet"),
		addrs: map[types.UID]string{},
	}
	if err := k.registerNode(ctx); err != nil {
		return err
	}
	if _, err := c.API.StartControllerManager(ctx, testenv.WorkloadControllers); err != nil {
		return err
	}
	stop := make(chan struct{})
	factory := informers.NewSharedInformerFactory(c.API.Kube, 0)
	inf := factory.Core().V1().Pods().Informer()
	enqueue := func(obj any) {
		if key, err := toolscache.MetaNamespaceKeyFunc(obj); err == nil {
			k.q.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("sandbox kubelet: %w", err)
	}
	k.pods = inf.GetIndexer()
	factory.Start(stop)
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		close(stop)
		return fmt.Errorf("sandbox kubelet: pod cache of %s did not sync: %w", c.Name, ctx.Err())
	}
	done := make(chan struct{})
	go func() { defer close(done); k.run() }()
	c.stopKubelet = func() {
		k.q.ShutDown()
		<-done
		close(stop)
		factory.Shutdown()
	}
	return nil
}

// registerNode creates the cluster's one Node, Ready, as a kubelet
// registers itself: the endpointslice controller skips pods whose Node it
// cannot find.
func (k *kubelet) registerNode(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node, Labels: map[string]string{corev1.LabelHostname: k.node}}}
	if err := k.c.API.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("sandbox kubelet: node %s: %w", k.node, err)
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "KubeletReady"}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: k.c.GatewayPodIP()}, {Type: corev1.NodeHostName, Address: k.node}},
	}
	if err := k.c.API.Client.Status().Update(ctx, node); err != nil {
		return fmt.Errorf("sandbox kubelet: node %s status: %w", k.node, err)
	}
	return nil
}

func (k *kubelet) run() {
	for {
		key, quit := k.q.Get()
		if quit {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := k.sync(ctx, key)
		cancel()
		switch {
		case err == nil || apierrors.IsNotFound(err):
			k.q.Forget(key)
		case apierrors.IsConflict(err):
			// The cache is behind; its next event brings the pod back.
			k.q.AddRateLimited(key)
		default:
			k.log.Warn("pod sync failed; retrying", "pod", key, "err", err)
			k.q.AddRateLimited(key)
		}
		k.q.Done(key)
	}
}

// sync moves one pod a step along its life: bind, run, or finish deleting.
func (k *kubelet) sync(ctx context.Context, key string) error {
	obj, exists, err := k.pods.GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if pod.Namespace == contract.SystemNamespace {
		return nil
	}
	pods := k.c.API.Kube.CoreV1().Pods(pod.Namespace)
	switch {
	case pod.DeletionTimestamp != nil:
		if pod.Spec.NodeName != k.node {
			return nil
		}
		delete(k.addrs, pod.UID)
		// The containers "stopped" at once: confirm the delete.
		return pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	case pod.Spec.NodeName == "":
		return pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
	case pod.Spec.NodeName == k.node && pod.Status.Phase == corev1.PodPending:
		return k.start(ctx, pod)
	}
	return nil
}

// start reports the pod Running and Ready at a fresh address, as a kubelet
// does once its containers started and no readiness probe holds them.
func (k *kubelet) start(ctx context.Context, pod *corev1.Pod) error {
	ip, ok := k.addrs[pod.UID]
	if !ok {
		n := k.c.nextPod()
		if n > lastPodAddr {
			k.log.Error("out of pod addresses; the pod stays Pending", "pod", pod.Namespace+"/"+pod.Name, "limit", lastPodAddr)
			return nil
		}
		ip = k.c.Site.PodAddr(n)
		k.addrs[pod.UID] = ip
	}
	now := metav1.Now()
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.HostIP = k.c.GatewayPodIP()
	pod.Status.HostIPs = []corev1.HostIP{{IP: pod.Status.HostIP}}
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	pod.Status.ContainerStatuses = nil
	for _, ct := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, ImageID: ct.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err := k.c.API.Kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}
