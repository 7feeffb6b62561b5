package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// fieldOwner is who the sandbox's server-side applies are from, as
// `kubectl apply --server-side` would be.
const fieldOwner = client.FieldOwner("ferry-sandbox")

// Cluster is one sandbox cluster.
type Cluster struct {
	Name   string
	API    *testenv.Cluster
	Site   *netns.Site
	Issuer *identity.CA
	// Controller and Gateway are the running daemons; Kill and Restart
	// replace them.
	Controller, Gateway *testenv.Process
	// DNS is the cluster's CoreDNS, which serves cluster.local and
	// clusterset.local from this cluster's API server (docs/dns.md); pods
	// resolve names through it (RequestName).
	DNS *testenv.CoreDNS

	sb       *Sandbox
	rendered []client.Object
	podMu    sync.Mutex
	pods     int
	// stopKubelet is set when the cluster runs workloads (Options.Workloads).
	stopKubelet func()
}

// GatewayAddr is the gateway's address on the WAN: the only address of this
// cluster that other clusters can reach.
func (c *Cluster) GatewayAddr() string {
	return net.JoinHostPort(c.Site.WANAddr, strconv.Itoa(contract.IngressPort))
}

// GatewayPodIP is the gateway "pod"'s address inside the cluster.
func (c *Cluster) GatewayPodIP() string { return c.Site.GatewayPodAddr() }

// install applies `ferry install`'s objects, then plays the cloud load
// balancer and the kubelet for the gateway.
func (c *Cluster) install(ctx context.Context) error {
	bundle := identity.EncodeCertificatesPEM(c.sb.Root.Cert)
	certPEM := identity.EncodeCertificatesPEM(c.Issuer.Cert)
	keyPEM, err := identity.EncodePrivateKeyPEM(c.Issuer.Key)
	if err != nil {
		return err
	}
	c.rendered, err = install.Render(install.Options{
		ClusterName: c.Name, MeshDomain: c.sb.Mesh,
		IssuerCertPEM: certPEM, IssuerKeyPEM: keyPEM, TrustBundlePEM: bundle,
		EgressPorts: c.sb.egressPorts, GatewayReplicas: gatewayReplicas,
	})
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	maps, err := install.Unstructured(c.rendered)
	if err != nil {
		return err
	}
	for _, m := range maps {
		u := &unstructured.Unstructured{Object: m}
		if err := c.API.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return c.publishGateway(ctx)
}

// publishGateway does what a cloud load balancer and the endpointslice
// controller would do for the gateway Service.
func (c *Cluster) publishGateway(ctx context.Context) error {
	var svc corev1.Service
	key := types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}
	if err := c.API.Client.Get(ctx, key, &svc); err != nil {
		return fmt.Errorf("gateway Service: %w", err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: c.Site.WANAddr}}
	if err := c.API.Client.Status().Update(ctx, &svc); err != nil {
		return fmt.Errorf("gateway Service load-balancer status: %w", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: contract.SystemNamespace, Name: contract.GatewayName + "-sandbox",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: contract.GatewayName,
				discoveryv1.LabelManagedBy:   testenv.EndpointSliceManagedBy,
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{c.GatewayPodIP()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
	}
	for _, p := range svc.Spec.Ports {
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.TargetPort.IntVal), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	if err := c.API.Client.Create(ctx, slice); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("gateway EndpointSlice: %w", err)
	}
	return nil
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount, with a token from the TokenRequest API, as a pod's
// projected token would.
func (c *Cluster) serviceAccountKubeconfig(ctx context.Context, namespace, sa string) (string, error) {
	tr, err := c.API.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(24 * 3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.API.Server, CertificateAuthorityData: c.API.RestConfig.CAData}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: sa}
	cfg.CurrentContext = c.Name
	path := filepath.Join(c.API.Dir, namespace+"-"+sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("kubeconfig for %s: %w", sa, err)
	}
	return path, nil
}

// deploymentArgs returns the container args of a rendered Deployment, so the
// daemons run exactly as their pods would.
func (c *Cluster) deploymentArgs(name string) ([]string, error) {
	for _, o := range c.rendered {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == name {
			return append([]string(nil), d.Spec.Template.Spec.Containers[0].Args...), nil
		}
	}
	return nil, fmt.Errorf("no Deployment %s in the install", name)
}

func (c *Cluster) startDaemons(ctx context.Context) error {
	if err := c.StartGateway(); err != nil {
		return err
	}
	if err := c.StartController(); err != nil {
		return err
	}
	if err := c.publishPods(ctx); err != nil {
		return err
	}
	return c.syncDeploymentStatus(ctx)
}

// publishPods writes a Pod for each daemon from its Deployment's template,
// running at the gateway pod's address, as the scheduler and kubelet would.
// Tools then reach the daemons' admin ports the usual way, through the API
// server's pod proxy (which dials the pod IP from inside the cluster).
func (c *Cluster) publishPods(ctx context.Context) error {
	for _, o := range c.rendered {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: PodName(d.Name), Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
		pod.Spec.NodeName = c.Name + "-node"
		if err := c.API.Client.Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("pod %s: %w", pod.Name, err)
		}
		now := metav1.Now()
		pod.Status = corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: c.GatewayPodIP(), PodIPs: []corev1.PodIP{{IP: c.GatewayPodIP()}},
			StartTime: &now,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		}
		if err := c.API.Client.Status().Update(ctx, pod); err != nil {
			return fmt.Errorf("pod %s status: %w", pod.Name, err)
		}
	}
	return nil
}

// PodName is the name of the one pod of a Deployment in the sandbox: a
// daemon restarted by Kill and Start keeps it, as a container restarted in
// its pod does.
func PodName(deployment string) string { return deployment + "-sandbox" }

// StartGateway starts (or restarts) ferry-gateway.
func (c *Cluster) StartGateway() error {
	p, err := c.startDaemon(contract.GatewayName, PodName(contract.GatewayName))
	if err == nil {
		c.Gateway = p
	}
	return err
}

// StartController starts (or restarts) ferry-controller.
func (c *Cluster) StartController() error {
	p, err := c.startDaemon(contract.ControllerName, PodName(contract.ControllerName))
	if err == nil {
		c.Controller = p
	}
	return err
}

// StartControllerReplica starts one more ferry-controller, as another pod
// of its Deployment would run: its own pod name (its leader-election
// identity and user agent), and its admin server on adminPort of the pod
// address, since the first replica holds the usual one. The caller stops
// it.
func (c *Cluster) StartControllerReplica(pod string, adminPort int) (*testenv.Process, error) {
	admin := net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(adminPort))
	return c.startDaemon(contract.ControllerName, pod, "--health-addr="+admin, "--metrics-addr="+admin)
}

// startDaemon runs a Deployment's daemon with its rendered args, then
// extra (later flags win).
func (c *Cluster) startDaemon(deployment, pod string, extra ...string) (*testenv.Process, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args, err := c.deploymentArgs(deployment)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := c.serviceAccountKubeconfig(ctx, contract.SystemNamespace, deployment)
	if err != nil {
		return nil, err
	}
	argv := append(c.Site.NS.Wrap(), filepath.Join(c.sb.bins, deployment))
	argv = append(argv, args...)
	argv = append(argv, "--kubeconfig="+kubeconfig)
	if deployment == contract.GatewayName {
		// The sandbox's clients dial from the site's own address, which is
		// also the daemons' pod address in ferry-system, so the rule that
		// only a Service's own namespace may use its imports would refuse
		// them all. Audit still counts them; gatewayd's tests enforce the
		// rule against a real API server. Later flags win.
		argv = append(argv, "--egress-callers=audit")
	}
	first := pod == PodName(deployment)
	if c.sb.pprof && first {
		argv = append(argv, "--pprof-addr="+net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(pprofPort(deployment))))
	}
	argv = append(argv, extra...)
	env := append([]string{"POD_IP=" + c.GatewayPodIP(), "POD_NAME=" + pod}, c.sb.daemonEnv...)
	name := c.Name + "-" + deployment // its log is <name>.log in the sandbox's directory
	if !first {
		name = c.Name + "-" + pod
	}
	return c.sb.Env.StartProcess(name, argv, env)
}

// WaitReady waits until both daemons answer /ready.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, d := range []struct {
		name string
		proc *testenv.Process
		port int
	}{
		{"ferry-gateway", c.Gateway, contract.GatewayAdminPort},
		{"ferry-controller", c.Controller, contract.ControllerAdminPort},
	} {
		if err := c.waitHTTP(ctx, d.proc, net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(d.port)), "/ready"); err != nil {
			return fmt.Errorf("%s not ready: %w\n--- %s (last lines) ---\n%s", d.name, err, d.proc.LogPath(), d.proc.Tail(20))
		}
	}
	return nil
}

// WaitProcessReady waits until the daemon p, whose admin server is on
// port of the pod address, answers /ready; it fails at once if p exits.
func (c *Cluster) WaitProcessReady(ctx context.Context, p *testenv.Process, port int) error {
	return c.waitHTTP(ctx, p, net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(port)), "/ready")
}

func (c *Cluster) waitHTTP(ctx context.Context, p *testenv.Process, addr, path string) error {
	hc := c.HTTPClient()
	var last error
	for {
		if p.Exited() {
			return errors.New("process exited")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", path, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HTTPClient makes requests from inside the cluster's network namespace.
func (c *Cluster) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: c.Site.NS.DialContext, DisableKeepAlives: true},
	}
}

// GatewayMetrics fetches the gateway's /metrics text.
func (c *Cluster) GatewayMetrics(ctx context.Context) (string, error) {
	return c.get(ctx, net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(contract.GatewayAdminPort)), "/metrics")
}

// ControllerMetrics fetches the controller's /metrics text.
func (c *Cluster) ControllerMetrics(ctx context.Context) (string, error) {
	return c.get(ctx, net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(contract.ControllerAdminPort)), "/metrics")
}

func pprofPort(deployment string) int {
	if deployment == contract.GatewayName {
		return GatewayPprofPort
	}
	return ControllerPprofPort
}

// Profile fetches a runtime profile from a daemon ("ferry-controller" or
// "ferry-gateway") of a sandbox started with Pprof; query is what follows
// /debug/pprof/, e.g. "heap" or "profile?seconds=10".
func (c *Cluster) Profile(ctx context.Context, deployment, query string) ([]byte, error) {
	if !c.sb.pprof {
		return nil, errors.New("sandbox started without Pprof")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://"+net.JoinHostPort(c.GatewayPodIP(), strconv.Itoa(pprofPort(deployment)))+"/debug/pprof/"+query, nil)
	if err != nil {
		return nil, err
	}
	hc := c.HTTPClient()
	hc.Timeout = 0 // a CPU profile takes as long as it asks; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("profile %s of %s: %w", query, deployment, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("profile %s of %s: %s", query, deployment, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse))
}

func (c *Cluster) get(ctx context.Context, addr, path string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse))
	return string(b), err
}

// maxAdminResponse bounds what the sandbox reads from a daemon's admin port.
const maxAdminResponse = 16 << 20
