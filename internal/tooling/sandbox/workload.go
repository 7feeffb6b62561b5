package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/linkgen"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// EchoPort is the container port of sandbox echo workloads.
const EchoPort = 8080

// Workload is a set of echo "pods": listeners on pod addresses inside a
// cluster's namespace, behind a Service with their EndpointSlice. Each
// answers every line with "<cluster>/<pod>: <line>", so a client can tell
// which cluster and pod served it.
type Workload struct {
	Namespace, Name string
	Pods            []string // pod addresses
	cluster         *Cluster
	headless        bool
	endpoints       []testenv.Endpoint
	listeners       []net.Listener
	wg              sync.WaitGroup
}

// firstWorkloadPod keeps workload pods clear of the gateway pod (.1).
const firstWorkloadPod = 20

// nextPod hands out pod addresses; pods are never reused within a sandbox.
func (c *Cluster) nextPod() int {
	c.podMu.Lock()
	defer c.podMu.Unlock()
	c.pods++
	return firstWorkloadPod + c.pods
}

// Echo starts replicas echo pods and their Service (port 80 -> 8080).
func (c *Cluster) Echo(ctx context.Context, namespace, name string, replicas int) (*Workload, error) {
	return c.echo(ctx, namespace, name, replicas, false)
}

// StatefulSet starts replicas echo pods behind a headless Service, as a
// StatefulSet has them: pod i has hostname <name>-i, and answers as
// "<cluster>/<name>-i", so a client can tell which pod served it.
func (c *Cluster) StatefulSet(ctx context.Context, namespace, name string, replicas int) (*Workload, error) {
	return c.echo(ctx, namespace, name, replicas, true)
}

// SetReady changes the readiness of pod i, as the kubelet and the
// endpointslice controller would when its readiness probe changes.
func (w *Workload) SetReady(ctx context.Context, i int, ready bool) error {
	w.endpoints[i].Ready = ready
	return w.cluster.API.SetEndpoints(ctx, w.Namespace, w.Name, w.endpoints)
}

func (c *Cluster) echo(ctx context.Context, namespace, name string, replicas int, headless bool) (*Workload, error) {
	w := &Workload{Namespace: namespace, Name: name, cluster: c, headless: headless}
	for range replicas {
		if err := w.addPod(); err != nil {
			w.Stop()
			return nil, err
		}
	}
	if _, err := c.API.CreateBackend(ctx, testenv.Backend{Namespace: namespace, Name: name, Endpoints: w.endpoints, Headless: headless}); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// addPod starts pod number len(w.Pods): a listener at a fresh pod address
// and its endpoint (ready; named <name>-i when the Service is headless).
func (w *Workload) addPod() error {
	c, i := w.cluster, len(w.Pods)
	addr := c.Site.PodAddr(c.nextPod())
	ln, err := c.Site.NS.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(EchoPort)))
	if err != nil {
		return fmt.Errorf("echo pod %d: %w", i, err)
	}
	w.listeners = append(w.listeners, ln)
	w.Pods = append(w.Pods, addr)
	tag := fmt.Sprintf("%s/%s-%d", c.Name, w.Name, i)
	w.wg.Add(1)
	go func() { defer w.wg.Done(); serveEcho(ln, tag) }()
	ep := testenv.Endpoint{IP: addr, Port: EchoPort, Ready: true}
	if w.headless {
		ep.Hostname = fmt.Sprintf("%s-%d", w.Name, i)
	}
	w.endpoints = append(w.endpoints, ep)
	return nil
}

// ScaleTo adds or removes pods from the end, as a StatefulSet scales:
// scaling up starts <name>-i for the new i; scaling down takes the highest
// ones out of the EndpointSlice first and then stops them, as a pod leaves
// its Service's endpoints before its containers stop.
func (w *Workload) ScaleTo(ctx context.Context, replicas int) error {
	for len(w.Pods) < replicas {
		if err := w.addPod(); err != nil {
			return err
		}
	}
	if len(w.Pods) <= replicas {
		return w.cluster.API.SetEndpoints(ctx, w.Namespace, w.Name, w.endpoints)
	}
	if err := w.cluster.API.SetEndpoints(ctx, w.Namespace, w.Name, w.endpoints[:replicas]); err != nil {
		return err
	}
	for _, l := range w.listeners[replicas:] {
		l.Close()
	}
	w.listeners, w.Pods, w.endpoints = w.listeners[:replicas], w.Pods[:replicas], w.endpoints[:replicas]
	return nil
}

// Stop closes the pods' listeners (their Service stays).
func (w *Workload) Stop() {
	for _, l := range w.listeners {
		l.Close()
	}
	w.wg.Wait()
}

func serveEcho(ln net.Listener, tag string) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					if _, werr := io.WriteString(c, tag+": "+line); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// Export creates the ServiceExport, as `ferry export` does; allowed, if
// given, limits which clusters may import it.
func (c *Cluster) Export(ctx context.Context, namespace, name string, allowed ...string) error {
	se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if len(allowed) > 0 {
		se.Annotations = map[string]string{contract.AnnotationAllowedClusters: strings.Join(allowed, ",")}
	}
	return c.API.Client.Create(ctx, se)
}

// LinkOptions tune the Link the sandbox applies.
type LinkOptions struct {
	// ProbePeriod and FailureThreshold; zero keeps the Link's defaults.
	ProbePeriod      time.Duration
	FailureThreshold int32
}

// Link makes importer import from exporter, as
// `ferry --context exporter link --cluster-name exporter | kubectl --context importer apply -f -`.
func (sb *Sandbox) Link(ctx context.Context, importer, exporter string, o LinkOptions) (*ferryv1.Link, error) {
	imp, exp := sb.Cluster(importer), sb.Cluster(exporter)
	if imp == nil || exp == nil {
		return nil, fmt.Errorf("sandbox: no cluster %q or %q", importer, exporter)
	}
	l, err := linkgen.Generate(ctx, exp.API.Client, linkgen.Options{ClusterName: exporter, MeshDomain: sb.Mesh})
	if err != nil {
		return nil, err
	}
	if o.ProbePeriod > 0 {
		l.Spec.Probe.Period = &metav1.Duration{Duration: o.ProbePeriod}
	}
	if o.FailureThreshold > 0 {
		l.Spec.Probe.FailureThreshold = &o.FailureThreshold
	}
	if err := imp.API.Client.Create(ctx, l); err != nil {
		return nil, fmt.Errorf("sandbox: apply Link in %s: %w", importer, err)
	}
	return l, nil
}

// Dial connects from a pod of this cluster to a Service, as kube-proxy
// would route it.
func (c *Cluster) Dial(ctx context.Context, namespace, service string, port int32) (net.Conn, error) {
	return c.API.DialService(ctx, c.Site.NS.DialContext, namespace, service, port)
}

// Request sends one line to an echo Service from a pod of this cluster and
// returns the reply line, e.g. "east/echo-0: hello".
func (c *Cluster) Request(ctx context.Context, namespace, service string, port int32, msg string) (string, error) {
	conn, err := c.Dial(ctx, namespace, service, port)
	if err != nil {
		return "", err
	}
	return request(ctx, conn, msg)
}

// RequestName is Request to a DNS name, as a pod of this cluster would
// send it: the name resolves through the cluster's CoreDNS, e.g.
// echo.demo.svc.clusterset.local or echo-east.demo.svc.cluster.local.
func (c *Cluster) RequestName(ctx context.Context, host string, port int32, msg string) (string, error) {
	if c.DNS == nil {
		return "", fmt.Errorf("sandbox: cluster %s runs no CoreDNS", c.Name)
	}
	conn, err := c.API.DialName(ctx, c.DNS.Resolver(), c.Site.NS.DialContext, host, port)
	if err != nil {
		return "", err
	}
	return request(ctx, conn, msg)
}

// request sends one line on conn, returns the reply line, and closes conn.
func request(ctx context.Context, conn net.Conn, msg string) (string, error) {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := io.WriteString(conn, msg+"\n"); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading reply: %w", err)
	}
	return strings.TrimSuffix(reply, "\n"), nil
}
