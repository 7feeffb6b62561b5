package sandbox

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
)

// The sandbox runs one process, and so one pod, per Ferry daemon, and the
// install it renders says so (gatewayReplicas): a Deployment that asks
// for two gateways when one runs would be a lie that `ferry gateways`
// rightly shows as 1/2.
const gatewayReplicas = 1

// syncDeploymentStatus writes the status of ferry-system's Deployments as
// kube-controller-manager's deployment controller would, from the pods the
// sandbox runs for them (publishPods): without that controller the status
// stays empty, and `ferry gateways` and `ferry version` showed the gateway
// as 0/2 ready in every demo. The pods are the sandbox's own, not a
// ReplicaSet's, so the counts come from the pods that match each
// Deployment's selector.
func (c *Cluster) syncDeploymentStatus(ctx context.Context) error {
	var deps appsv1.DeploymentList
	if err := c.API.Client.List(ctx, &deps, client.InNamespace(contract.SystemNamespace)); err != nil {
		return fmt.Errorf("list Deployments: %w", err)
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return fmt.Errorf("deployment %s: selector: %w", d.Name, err)
		}
		var pods corev1.PodList
		if err := c.API.Client.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return fmt.Errorf("pods of Deployment %s: %w", d.Name, err)
		}
		d.Status = deploymentStatus(d, pods.Items, metav1.Now())
		if err := c.API.Client.Status().Update(ctx, d); err != nil {
			return fmt.Errorf("deployment %s status: %w", d.Name, err)
		}
	}
	return nil
}

// deploymentStatus is what the deployment controller reports for d when
// pods are all it has: every pod runs the current template (updated), a
// ready pod counts as available (the sandbox's pods are ready from the
// start, and Ferry's Deployments set no minReadySeconds), and the
// conditions say whether enough are available.
func deploymentStatus(d *appsv1.Deployment, pods []corev1.Pod, now metav1.Time) appsv1.DeploymentStatus {
	var st appsv1.DeploymentStatus
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	for _, p := range pods {
		if p.DeletionTimestamp != nil || (sel != nil && !sel.Matches(labels.Set(p.Labels))) {
			continue
		}
		st.Replicas++
		st.UpdatedReplicas++
		if podReady(&p) {
			st.ReadyReplicas++
			st.AvailableReplicas++
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st.UnavailableReplicas = max(want-st.AvailableReplicas, 0)
	st.ObservedGeneration = d.Generation
	// The deployment controller's rule with the default maxUnavailable of
	// 25%, rounded down: at least want - floor(want/4) must be available.
	available := corev1.ConditionFalse
	reason, msg := "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	if st.AvailableReplicas >= want-want/4 {
		available, reason, msg = corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability."
	}
	st.Conditions = []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: available, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now},
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
			Message: fmt.Sprintf("Deployment %q has successfully progressed.", d.Name), LastUpdateTime: now, LastTransitionTime: now},
	}
	return st
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
