package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterOptions place one cluster's control plane. The zero value runs it on
// the host's loopback.
type ClusterOptions struct {
	// Host is the address etcd and the API server listen on. Default 127.0.0.1.
	Host string
	// Wrap prefixes each control-plane command, e.g. {"ip", "netns", "exec",
	// "ferry-east"} to run the cluster inside a network namespace.
	Wrap []string
	// Dial, if set, is how this process reaches the API server (for example
	// from inside the cluster's network namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Audit makes the API server log every write (Cluster.AuditedWrites).
	Audit bool
}

// Cluster is one running local control plane and clients for it.
type Cluster struct {
	Name string
	// Dir holds this cluster's data, certificates, logs and kubeconfig.
	Dir string
	// Kubeconfig is the path of a kubeconfig with one context, Name.
	Kubeconfig string
	// Server is the API server URL.
	Server string

	RestConfig *rest.Config
	Kube       kubernetes.Interface
	// Client is a controller-runtime client whose scheme knows core types,
	// the MCS API and whatever Options.Scheme added.
	Client client.Client

	opts      ClusterOptions
	state     *stateDir
	bins      string
	pki       *pki
	etcdURL   string
	apiPort   int
	etcd      *Process
	apiserver *Process
	// controllerManager runs only when StartControllerManager was called.
	controllerManager *Process
}

// StartupTimeout bounds how long a cluster may take to become ready.
const StartupTimeout = 60 * time.Second

func startCluster(ctx context.Context, name, dir, bins string, state *stateDir, scheme *runtime.Scheme, opts ClusterOptions) (*Cluster, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	var hosts []net.IP
	if ip := net.ParseIP(opts.Host); ip != nil && !ip.IsLoopback() {
		hosts = append(hosts, ip)
	}
	p, err := newPKI(dir, hosts)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c := &Cluster{Name: name, Dir: dir, opts: opts, state: state, bins: bins, pki: p}

	// Ports are chosen by the kernel and then handed to the children, so two
	// packages starting clusters at once can, rarely, race for one; a failed
	// start is retried on fresh ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = c.start(ctx); lastErr == nil {
			break
		}
		c.stopProcesses()
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, lastErr)
	}
	cfg, err := c.restConfig()
	if err != nil {
		c.stopProcesses()
		return nil, err
	}
	c.RestConfig = cfg
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		c.stopProcesses()
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		c.stopProcesses()
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, []*Cluster{c}); err != nil {
		c.stopProcesses()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	ports := []int{2379, 2380, 6443}
	if len(c.opts.Wrap) == 0 {
		// On the shared host network, ports must be found free; inside a
		// cluster's own network namespace, the usual ones are.
		var err error
		if ports, err = freePorts(c.opts.Host, 3); err != nil {
			return err
		}
	}
	clientPort, peerPort := ports[0], ports[1]
	c.apiPort = ports[2]
	c.etcdURL = fmt.Sprintf("http://%s", net.JoinHostPort(c.opts.Host, strconv.Itoa(clientPort)))
	peerURL := fmt.Sprintf("http://%s", net.JoinHostPort(c.opts.Host, strconv.Itoa(peerPort)))
	c.Server = fmt.Sprintf("https://%s", net.JoinHostPort(c.opts.Host, strconv.Itoa(c.apiPort)))

	var err error
	c.etcd, err = startProcess(c.state, "etcd", filepath.Join(c.Dir, "etcd.log"), c.wrap(filepath.Join(c.bins, "etcd"),
		"--name="+c.Name,
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+c.etcdURL,
		"--advertise-client-urls="+c.etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster="+c.Name+"="+peerURL,
		// A test cluster's data is worthless after the run; fsync is the
		// dominant cost of every write on a small machine.
		"--unsafe-no-fsync",
		"--log-level=error",
	), nil)
	if err != nil {
		return err
	}
	return c.startAPIServer(ctx)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	audit, err := c.auditFlags()
	if err != nil {
		return err
	}
	c.apiserver, err = startProcess(c.state, "kube-apiserver", filepath.Join(c.Dir, "kube-apiserver.log"), c.wrap(filepath.Join(c.bins, "kube-apiserver"), append(audit,
		"--etcd-servers="+c.etcdURL,
		"--bind-address="+c.opts.Host,
		"--advertise-address="+c.opts.Host,
		"--secure-port="+strconv.Itoa(c.apiPort),
		"--cert-dir="+c.Dir,
		"--tls-cert-file="+c.pki.serveCertFile,
		"--tls-private-key-file="+c.pki.serveKeyFile,
		"--client-ca-file="+c.pki.caFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.saKeyFile,
		"--service-account-signing-key-file="+c.pki.saKeyFile,
		// ClusterIPs are allocated on paper only: nothing here routes them, and
		// nothing ever sends traffic to them.
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// There is no node to reach the API server through the kubernetes
		// Service, and its loopback address would be refused in Endpoints.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	)...), nil)
	if err != nil {
		return err
	}
	return c.waitReady(ctx)
}

func (c *Cluster) wrap(bin string, args ...string) []string {
	return append(append(append([]string{}, c.opts.Wrap...), bin), args...)
}

// waitReady polls /readyz with the admin credentials until it answers 200.
func (c *Cluster) waitReady(ctx context.Context) error {
	cfg, err := c.restConfig()
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("http client: %w", err)
	}
	hc.Timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(ctx, StartupTimeout)
	defer cancel()
	for {
		for _, p := range []*Process{c.etcd, c.apiserver} {
			if p.exited() {
				return fmt.Errorf("%s exited during startup: %w\n%s", p.name, p.err, p.tail(15))
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s (log: %s):\n%s", StartupTimeout, c.apiserver.logPath, c.apiserver.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) restConfig() (*rest.Config, error) {
	cfg := &rest.Config{
		Host: c.Server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.caPEM,
			CertData: c.pki.adminCertPEM,
			KeyData:  c.pki.adminKeyPEM,
		},
		// Tests create thousands of objects; client-go's default of 5 QPS
		// would turn seconds into minutes.
		QPS:   500,
		Burst: 1000,
		Dial:  c.opts.Dial,
	}
	return cfg, nil
}

// StopAPIServer stops only the API server (SIGKILL when kill is true), as a
// peer outage would. etcd keeps its data for StartAPIServer.
func (c *Cluster) StopAPIServer(kill bool) {
	if kill {
		c.apiserver.kill()
	} else {
		c.apiserver.stop(10 * time.Second)
	}
}

// StartAPIServer starts a stopped API server again on the same address.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if !c.apiserver.exited() {
		return errors.New("testenv: kube-apiserver is still running")
	}
	return c.startAPIServer(ctx)
}

// Stop stops the cluster's processes. Its directory is removed by Env.Stop.
func (c *Cluster) Stop() { c.stopProcesses() }

func (c *Cluster) stopProcesses() {
	if c.controllerManager != nil {
		c.controllerManager.stop(5 * time.Second)
	}
	if c.apiserver != nil {
		c.apiserver.stop(10 * time.Second)
	}
	if c.etcd != nil {
		c.etcd.stop(10 * time.Second)
	}
}

func freePorts(host string, n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("free port on %s: %w", host, err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeKubeconfig(path string, clusters []*Cluster) error {
	cfg := clientcmdapi.NewConfig()
	for _, c := range clusters {
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: c.pki.caPEM}
		cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.pki.adminCertPEM, ClientKeyData: c.pki.adminKeyPEM}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
		if cfg.CurrentContext == "" {
			cfg.CurrentContext = c.Name
		}
	}
	return writeKubeconfigFile(path, cfg)
}

// RSS returns the resident memory of the cluster's etcd and kube-apiserver,
// in bytes, for reports.
func (c *Cluster) RSS() (int64, error) {
	var total int64
	for _, p := range []*Process{c.etcd, c.apiserver} {
		rss, err := p.RSS()
		if err != nil {
			return 0, err
		}
		total += rss
	}
	return total, nil
}

// PIDs returns the process IDs of the cluster's etcd and kube-apiserver.
func (c *Cluster) PIDs() []int {
	return []int{c.etcd.cmd.Process.Pid, c.apiserver.cmd.Process.Pid}
}
