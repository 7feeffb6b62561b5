package install

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
)

// nonRootUID is distroless's "nonroot" user, which the Dockerfile's base
// image already runs as; naming it here also satisfies runAsNonRoot for
// images whose USER is not numeric.
const nonRootUID int64 = 65532

// gatewayGracePeriod covers the gateway's drain (DrainTimeout, 30 s by
// default in internal/gateway) plus a margin for the readiness probe to fail
// and endpoints to update before SIGKILL.
const gatewayGracePeriod int64 = 40

func podSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(nonRootUID),
		RunAsGroup:     ptr.To(nonRootUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func containerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// env gives the daemons their pod's name and IP (docs/contracts.md) and a
// GOMEMLIMIT equal to the container's memory limit, so the Go GC works
// harder before the kernel's OOM killer would act.
func env() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
		{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1")}}},
	}
}

// probes point at the admin port: /live fails only when the process is
// wedged (restart it), /ready when it cannot serve (take it out of
// endpoints, e.g. while draining).
func probes(c *corev1.Container) {
	get := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("admin")}}
	}
	c.LivenessProbe = &corev1.Probe{ProbeHandler: get("/live"), PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: get("/ready"), PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 2}
}

func resources(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq), corev1.ResourceMemory: resource.MustParse(memReq)},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memLim)},
	}
	if cpuLim != "" {
		r.Limits[corev1.ResourceCPU] = resource.MustParse(cpuLim)
	}
	return r
}

func deployment(name, component string, replicas int32, pod corev1.PodSpec) *appsv1.Deployment {
	pod.ServiceAccountName = name
	// The daemons talk to the API server with their ServiceAccount's token.
	pod.AutomountServiceAccountToken = ptr.To(true)
	pod.SecurityContext = podSecurity()
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(name, contract.SystemNamespace, component),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector(component)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(component)},
				Spec:       pod,
			},
		},
	}
}

func controllerDeployment(s spec) *appsv1.Deployment {
	c := corev1.Container{
		Name:            "controller",
		Image:           s.controllerImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            controllerArgs(s),
		Env:             env(),
		Ports:           []corev1.ContainerPort{{Name: "admin", ContainerPort: contract.ControllerAdminPort, Protocol: corev1.ProtocolTCP}},
		// The controller caches Services and EndpointSlices cluster-wide, so
		// its memory grows with the cluster; 512Mi covers thousands.
		Resources:       resources("100m", "128Mi", "1", "512Mi"),
		SecurityContext: containerSecurity(),
	}
	probes(&c)
	return deployment(contract.ControllerName, "controller", s.controllerReplicas, corev1.PodSpec{Containers: []corev1.Container{c}})
}

func gatewayDeployment(s spec) *appsv1.Deployment {
	c := corev1.Container{
		Name:            "gateway",
		Image:           s.gatewayImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            gatewayArgs(s),
		Env:             env(),
		Ports: []corev1.ContainerPort{
			{Name: "ingress", ContainerPort: contract.IngressPort, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: contract.GatewayAdminPort, Protocol: corev1.ProtocolTCP},
		},
		// No CPU limit: the gateway is on the data path, and CFS throttling
		// would add tail latency to every cross-cluster connection. The
		// request still reserves its share; memory is limited.
		Resources:       resources("200m", "128Mi", "", "512Mi"),
		SecurityContext: containerSecurity(),
	}
	probes(&c)
	d := deployment(contract.GatewayName, "gateway", s.gatewayReplicas, corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		TerminationGracePeriodSeconds: ptr.To(gatewayGracePeriod),
		// Preferred, not required: spreading replicas over nodes protects
		// against a node failure, but a small cluster with fewer nodes than
		// replicas must still run them all.
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					TopologyKey:   corev1.LabelHostname,
					LabelSelector: &metav1.LabelSelector{MatchLabels: selector("gateway")},
				},
			}},
		}},
	})
	// Surge before removing a replica, so a rollout never lowers capacity.
	d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		},
	}
	// The egress and clusterset ranges are the gateway's listeners; the
	// kernel must not hand those ports to its outbound connections (a
	// safe sysctl since Kubernetes 1.27: no node allowlist needed).
	d.Spec.Template.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{
		Name:  "net.ipv4.ip_local_reserved_ports",
		Value: contract.ReservedPortsSysctl(s.egressPorts, contract.DefaultClustersetRange().String()),
	}}
	return d
}

// gatewayService publishes the gateway's SPIFFE identity in an annotation so
// that `ferry link` can name it without reading any Secret.
func gatewayService(s spec) *corev1.Service {
	m := meta(contract.GatewayName, contract.SystemNamespace, "gateway")
	m.Annotations = map[string]string{contract.AnnotationGatewayIdentity: contract.GatewayID(s.meshDomain, s.clusterName).String()}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: m,
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceType(s.serviceType),
			// Local keeps each peer's source address (no SNAT to a node's), so
			// the gateway's per-address handshake limits see peers, not
			// nodes (docs/install.md). Nodes without a gateway pod then fail
			// the load balancer's health check and get no traffic.
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicy(s.externalTrafficPolicy),
			Selector:              selector("gateway"),
			Ports: []corev1.ServicePort{{
				Name: "ingress", Port: contract.IngressPort, TargetPort: intstr.FromString("ingress"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// gatewayPDB uses maxUnavailable 1, not minAvailable 1: with one replica,
// minAvailable 1 would block every node drain forever, while maxUnavailable
// 1 lets a drain proceed and still keeps N-1 of N replicas during voluntary
// disruptions.
func gatewayPDB() *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(contract.GatewayName, contract.SystemNamespace, "gateway"),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: selector("gateway")},
		},
	}
}
