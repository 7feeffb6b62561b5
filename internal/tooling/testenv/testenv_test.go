package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/tooling/netns"
)

// shared is one pair of clusters for the tests that do not stop them.
var shared *Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	env, err := Start(ctx, Options{Clusters: []string{"east", "west"}, CRDs: MCSCRDs()})
	cancel()
	if err != nil {
		println("testenv:", err.Error())
		os.Exit(1)
	}
	shared = env
	code := m.Run()
	env.Stop()
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartupFigures(t *testing.T) {
	for _, c := range shared.Clusters {
		rss, err := c.RSS()
		if err != nil {
			t.Fatal(err)
		}
		if rss <= 0 {
			t.Fatalf("cluster %s: RSS %d", c.Name, rss)
		}
		t.Logf("cluster %s: etcd+kube-apiserver RSS %.0f MiB", c.Name, float64(rss)/(1<<20))
	}
	t.Logf("two clusters started in parallel, CRDs installed, in %s", shared.StartupTime.Round(time.Millisecond))
}

func TestClustersAreIndependent(t *testing.T) {
	ctx := ctxT(t)
	east, west := shared.Cluster("east"), shared.Cluster("west")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "only-in-east"}}
	if _, err := east.Kube.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := east.Kube.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("east cannot read its own object: %v", err)
	}
	if _, err := west.Kube.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("west sees east's object (err=%v); clusters must not share state", err)
	}
	if east.Server == west.Server {
		t.Fatalf("both clusters serve at %s", east.Server)
	}
}

func TestMCSCRDsInstalled(t *testing.T) {
	ctx := ctxT(t)
	c := shared.Cluster("west")
	if err := c.EnsureNamespace(ctx, "mcs"); err != nil {
		t.Fatal(err)
	}
	se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "mcs", Name: "foo"}}
	if err := c.Client.Create(ctx, se); err != nil {
		t.Fatalf("create ServiceExport through the installed CRD: %v", err)
	}
}

func TestKubeconfigHasOneContextPerCluster(t *testing.T) {
	out, err := exec.Command("grep", "-c", "^- context:", shared.Kubeconfig).Output()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(string(out[:len(out)-1])); n != 2 {
		t.Fatalf("kubeconfig %s has %d contexts, want 2", shared.Kubeconfig, n)
	}
}

// The dial helper reaches a real listener through a Service and its
// EndpointSlice. The API server refuses loopback endpoints, so the listener
// sits on a pod address inside a network namespace.
func TestDialServiceReachesListener(t *testing.T) {
	netns.RequireRoot(t)
	ctx := ctxT(t)
	topo, err := netns.NewTopology("lab")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Close() })
	site := topo.Sites[0]
	ln, err := site.NS.Listen("tcp", net.JoinHostPort(site.PodAddr(10), "8080"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()

	c := shared.Cluster("east")
	_, err = c.CreateBackend(ctx, Backend{Namespace: "dial", Name: "echo", Endpoints: []Endpoint{
		{IP: site.PodAddr(10), Port: 8080, Ready: true},
		// Not ready and not listening: must never be picked.
		{IP: site.PodAddr(11), Port: 8080, Ready: false},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		conn, err := c.DialService(ctx, site.NS.DialContext, "dial", "echo", 80)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		msg := "ping " + strconv.Itoa(i)
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(got) != msg {
			t.Fatalf("echo through Service: got %q, %v", got, err)
		}
	}

	if _, err := c.DialService(ctx, site.NS.DialContext, "dial", "echo", 81); err == nil {
		t.Fatal("dial to a port the Service does not have succeeded")
	}
	if err := c.SetEndpoints(ctx, "dial", "echo", []Endpoint{{IP: site.PodAddr(10), Port: 8080, Ready: false}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DialService(ctx, site.NS.DialContext, "dial", "echo", 80); !errors.Is(err, ErrNoReadyEndpoints) {
		t.Fatalf("dial with no ready endpoints: want ErrNoReadyEndpoints, got %v", err)
	}
}

// Stopping one cluster leaves the other serving; an API server restart keeps
// the data and the audit log; Stop leaves no process and no directory.
func TestStopAndRestartIsolation(t *testing.T) {
	ctx := ctxT(t)
	env, err := Start(ctx, Options{Clusters: []string{"a", "b"}, Cluster: func(name string) ClusterOptions {
		return ClusterOptions{Audit: name == "b"}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	a, b := env.Cluster("a"), env.Cluster("b")
	pids := append(a.PIDs(), b.PIDs()...)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "survives"}}
	if _, err := b.Kube.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	a.Stop()
	if _, err := a.Kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Fatal("stopped cluster a still answers")
	}
	if _, err := b.Kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("cluster b stopped serving when a stopped: %v", err)
	}

	b.StopAPIServer(true)
	if err := b.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Kube.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("object lost across an API server restart: %v", err)
	}
	pids = append(pids, b.PIDs()...)

	// The audit log has both writes, the second by its user agent, across
	// the restart, and no read.
	cfg := rest.CopyConfig(b.RestConfig)
	cfg.UserAgent = "audit-test (replica-x)"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm2 := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "audited"}}
	if _, err := kube.CoreV1().ConfigMaps("default").Create(ctx, cm2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	writes, err := b.AuditedWrites(func(e AuditEvent) bool {
		return e.ObjectRef.Resource == "configmaps" && e.ObjectRef.Namespace == "default"
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range writes {
		names = append(names, w.Verb+" "+w.ObjectRef.Name+" "+w.UserAgent)
	}
	if len(writes) != 2 || writes[0].ObjectRef.Name != "survives" || writes[1].ObjectRef.Name != "audited" ||
		writes[1].UserAgent != cfg.UserAgent || writes[1].Verb != "create" || writes[1].ResponseStatus.Code != 201 {
		t.Errorf("audited writes: %q, want the create of survives, then audited by %q", names, cfg.UserAgent)
	}
	if _, err := a.AuditedWrites(nil); err == nil {
		t.Error("AuditedWrites on a cluster started without Audit: no error")
	}

	env.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(env.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left behind", env.dir)
	}
}

// A run that crashed leaves children and a directory; the next run reaps both,
// and leaves alone a process that merely reuses a recorded PID.
func TestReapStaleRun(t *testing.T) {
	root := t.TempDir()
	// An owner PID above pid_max is certainly dead.
	dir := filepath.Join(root, strconv.Itoa(1<<22+1)+"-crashed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) (*exec.Cmd, chan struct{}) {
		c := exec.Command("sh", args...)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		return c, done
	}
	// Ours: like every child, its command line names the run's directory.
	// sh stays the parent of sleep, so the group kill is exercised too.
	ours, oursDone := start("-c", "sleep 60; :", dir)
	// A stranger whose PID was recorded (as if recycled).
	stranger, strangerDone := start("-c", "sleep 60; :")
	t.Cleanup(func() { _ = stranger.Process.Kill() })
	state := &stateDir{path: dir}
	state.record(ours.Process.Pid)
	state.record(stranger.Process.Pid)
	// Start returns once exec has begun, but the kernel sets the new
	// command line a moment later; until then /proc/<pid>/cmdline is empty
	// and the reaper rightly leaves the PID alone. A crashed run's children
	// are long past that point, so wait for it here.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ours.Process.Pid))
		if strings.Contains(string(b), dir) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child's command line never named %s: %q", dir, b)
		}
		time.Sleep(5 * time.Millisecond)
	}

	reapStale(root)
	select {
	case <-oursDone:
	case <-time.After(5 * time.Second):
		_ = ours.Process.Kill()
		t.Fatal("stale child was not killed")
	}
	select {
	case <-strangerDone:
		t.Fatal("a process that only reuses a recorded PID was killed")
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale directory was not removed")
	}
}
