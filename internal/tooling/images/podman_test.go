package images

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// The test of this file runs the real images in a real OCI runtime:
// podman, from Debian's packages (make deps installs it), with runc. crun,
// podman's default, refuses this machine's hybrid cgroup v1 layout; runc
// runs it.

var shared = testenv.Lazy{Options: testenv.Options{
	Clusters:    []string{"images"},
	CRDs:        install.CRDDocuments(),
	AddToScheme: []func(*kruntime.Scheme) error{ferryv1.AddToScheme},
}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Stop()
	if probe.path != "" {
		os.RemoveAll(filepath.Dir(probe.path))
	}
	if realBuild.dir != "" {
		os.RemoveAll(realBuild.dir)
	}
	os.Exit(code) //nolint:forbidigo // the whole of a TestMain: it ends the test binary
}

// podmanTimeout bounds each podman command, so a wedged runtime fails the
// test instead of hanging it.
const podmanTimeout = 2 * time.Minute

func podman(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podmanTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// SkipContainersEnv=1 opts out of the OCI runtime test where containers
// cannot run; without it, a machine that cannot run them fails the test
// with what to do, as the network-namespace tests do without root.
const SkipContainersEnv = "FERRY_SKIP_CONTAINERS"

// runQuiet runs a command for a cleanup, bounded like podman's.
func runQuiet(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), podmanTimeout)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).Run()
}

// requirePodman fails (or, opted out, skips loudly) where containers
// cannot run: not root (the test uses rootful podman with the host's
// network), or no podman or runc.
func requirePodman(t *testing.T) {
	t.Helper()
	var missing []string
	for _, b := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	var why string
	switch {
	case os.Geteuid() != 0:
		why = "needs root (rootful podman)"
	case len(missing) > 0:
		why = "needs " + strings.Join(missing, " and ") + " (`make deps` installs them; Debian: apt-get install podman runc)"
	default:
		return
	}
	if os.Getenv(SkipContainersEnv) == "1" {
		t.Skipf("SKIPPED (NOT PASSED): %s %s; %s=1 opted out. CI runs it as root with podman.", t.Name(), why, SkipContainersEnv)
	}
	t.Fatalf("%s runs the images in a real OCI runtime and %s. Run the tests as root after `make deps` (CI does), or set %s=1 to skip it explicitly.", t.Name(), why, SkipContainersEnv)
}

// hardening turns the security context `ferry install` renders into podman
// flags, field by field. A field it does not know fails the test, so that
// a change to the rendered context cannot go untested here.
func hardening(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) []string {
	t.Helper()
	var args []string
	uid, gid := pod.RunAsUser, pod.RunAsGroup
	if c.RunAsUser != nil {
		uid = c.RunAsUser
	}
	if uid == nil || gid == nil || *uid == 0 {
		t.Fatalf("the rendered pod runs as %v:%v; want a non-root user and group", uid, gid)
	}
	args = append(args, fmt.Sprintf("--user=%d:%d", *uid, *gid))
	if c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem {
		// Kubernetes mounts no tmpfs on a read-only root; podman does
		// unless told not to.
		args = append(args, "--read-only", "--read-only-tmpfs=false")
	}
	if c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation {
		args = append(args, "--security-opt=no-new-privileges")
	}
	if c.Capabilities != nil {
		for _, d := range c.Capabilities.Drop {
			args = append(args, "--cap-drop="+string(d))
		}
		if len(c.Capabilities.Add) > 0 {
			t.Fatalf("the rendered container adds capabilities %v; map them here", c.Capabilities.Add)
		}
	}
	if sp := pod.SeccompProfile; sp != nil && sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("seccomp profile %s: map it here (RuntimeDefault is podman's default)", sp.Type)
	}
	if c.Privileged != nil || c.SELinuxOptions != nil || c.AppArmorProfile != nil || c.ProcMount != nil || c.SeccompProfile != nil || c.RunAsGroup != nil {
		t.Fatalf("the rendered container sets a security field this test does not map: %+v", c)
	}
	return args
}

// TestImagesRunHardened builds both images from this checkout, loads them
// with podman load, and runs them as `ferry install` would: its rendered
// args and security context, against a real API server. Each must print
// its version, start, bind its ports and answer /live; the controller must
// issue the gateway's certificate, so the gateway's mTLS ingress listens.
func TestImagesRunHardened(t *testing.T) {
	requirePodman(t)
	work, m, built := realImages(t)
	written, err := Write(filepath.Join(work, "out"), install.DefaultRegistry, m, built)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range written {
		t.Cleanup(func() { _ = runQuiet("podman", "rmi", "--force", w.Ref) })
		podman(t, "load", "--quiet", "--input", filepath.Join(work, "out", w.Tarball))
		// podman keeps the config as the image ID: the very image built.
		id := podman(t, "image", "inspect", "--format", "{{.Id}}", w.Ref)
		if want := configDigest(t, built, w); "sha256:"+id != want {
			t.Errorf("podman loaded %s as %s, built %s", w.Ref, id, want)
		}
	}

	c := shared.Get(t).Cluster("images")
	deployments := applyInstall(t, c)
	kubeconfig := filepath.Join(work, "kubeconfig")
	raw, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// Readable by the image's user; the directory path is not seen inside.
	if err := os.WriteFile(kubeconfig, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	ports, err := freeLoopbackPorts(3)
	if err != nil {
		t.Fatal(err)
	}
	controllerAdmin := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	gatewayAdmin := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	ingress := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	run := map[string][]string{
		contract.ControllerName: {"--health-addr=" + controllerAdmin, "--metrics-addr=" + controllerAdmin},
		contract.GatewayName:    {"--admin-addr=" + gatewayAdmin, "--ingress-addr=" + ingress},
	}
	for _, w := range written {
		name := strings.SplitN(filepath.Base(w.Ref), ":", 2)[0]
		d := deployments[name]
		if d == nil {
			t.Fatalf("the install renders no Deployment %s", name)
		}
		spec := d.Spec.Template.Spec
		sec := hardening(t, spec.SecurityContext, spec.Containers[0].SecurityContext)

		version := podman(t, append(append([]string{"run", "--rm", "--runtime=runc", "--network=none"}, limits()...), append(sec, w.Ref, "--version")...)...)
		if !strings.Contains(version, name+" "+m.Version) {
			t.Errorf("%s --version printed %q", name, version)
		}

		container := fmt.Sprintf("ferry-test-%s-%d", name, os.Getpid())
		args := []string{"run", "--detach", "--name=" + container, "--runtime=runc",
			// The host's network: the API server and the probes are on its
			// loopback, and the daemons listen only there (the flags below).
			"--network=host",
			"--volume=" + kubeconfig + ":/etc/ferry/kubeconfig:ro",
			"--env=POD_NAME=" + container, "--env=POD_IP=127.0.0.1"}
		args = append(append(append(args, limits()...), sec...), w.Ref)
		args = append(append(args, spec.Containers[0].Args...), "--kubeconfig=/etc/ferry/kubeconfig")
		args = append(args, run[name]...) // later flags win
		// Registered before the run: a container created but not started
		// must go too.
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := exec.Command("podman", "logs", "--tail=30", container).CombinedOutput()
				t.Logf("--- %s (last lines) ---\n%s", container, out)
			}
			_ = runQuiet("podman", "rm", "--force", "--time=5", container)
		})
		podman(t, args...)
		checkConfined(t, container)
	}

	waitHTTP(t, "controller /live", "http://"+controllerAdmin+"/live")
	waitHTTP(t, "gateway /live", "http://"+gatewayAdmin+"/live")
	testkit.EventuallyWithin(t, time.Minute, "the gateway's mTLS ingress listens (its certificate issued by the controller)", func() bool {
		conn, err := net.DialTimeout("tcp", ingress, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	waitHTTP(t, "gateway /ready", "http://"+gatewayAdmin+"/ready")
	waitHTTP(t, "controller /ready", "http://"+controllerAdmin+"/ready")
}

// checkConfined reads the running daemon's process from the host, which is
// what the kernel enforces, not what podman was asked: its user, no
// effective or bounding capabilities, no_new_privs, a read-only root.
func checkConfined(t *testing.T, container string) {
	t.Helper()
	pid := podman(t, "inspect", "--format", "{{.State.Pid}}", container)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("%s: %v", container, err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	for k, want := range map[string]string{
		"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532",
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "0000000000000000",
		"NoNewPrivs": "1",
	} {
		if fields[k] != want {
			t.Errorf("%s: %s is %q, want %q", container, k, fields[k], want)
		}
	}
	mounts, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatalf("%s: %v", container, err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == "/" {
			if !strings.HasPrefix(f[5], "ro") {
				t.Errorf("%s: root mounted %s, want read-only", container, f[5])
			}
			return
		}
	}
	t.Errorf("%s: no root mount in mountinfo", container)
}

// realBuild is both daemons built from this checkout once per test binary,
// for the tests that need the real binaries; TestMain removes it.
var realBuild struct {
	once  sync.Once
	dir   string
	meta  Meta
	built []Built
	err   error
}

// realImages builds both daemons for this machine's platform, as `make
// images` does, with a tag of this run's own, so parallel runs on one
// machine neither share nor remove each other's images.
func realImages(t *testing.T) (string, Meta, []Built) {
	t.Helper()
	realBuild.once.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			realBuild.err = err
			return
		}
		if realBuild.dir, err = os.MkdirTemp("", "ferry-images-test-"); err != nil {
			realBuild.err = err
			return
		}
		realBuild.meta = Meta{Version: fmt.Sprintf("podman-test-%d", os.Getpid()), Revision: "test", Source: "https://ferry.dev/ferry", Created: time.Unix(0, 0)}
		plat := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
		realBuild.built, realBuild.err = Build(context.Background(), Options{
			Root: root, WorkDir: filepath.Join(realBuild.dir, "bin"), Platforms: []v1.Platform{plat}, Meta: realBuild.meta,
		})
	})
	if realBuild.err != nil {
		t.Fatal(realBuild.err)
	}
	return realBuild.dir, realBuild.meta, realBuild.built
}

// limits are the container's rlimits. The runtime sets podman's defaults
// (a million open files) unless told otherwise, which this machine's
// limits do not allow; the process's own limits are what a pod would have
// on such a node.
func limits() []string {
	return []string{"--ulimit=nofile=4096:4096", "--ulimit=nproc=4096:4096"}
}

// applyInstall applies what `ferry install` renders, as kubectl apply
// would, and returns its Deployments by name. Nothing runs them: the API
// server has no controllers, so the containers stand in for their pods.
func applyInstall(t *testing.T, c *testenv.Cluster) map[string]*appsv1.Deployment {
	t.Helper()
	root, err := identity.NewRoot(contract.DefaultMeshDomain, 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := root.NewIssuer(c.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := identity.EncodePrivateKeyPEM(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := install.Render(install.Options{
		ClusterName: c.Name, IssuerCertPEM: identity.EncodeCertificatesPEM(issuer.Cert),
		IssuerKeyPEM: keyPEM, TrustBundlePEM: identity.EncodeCertificatesPEM(root.Cert),
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := install.Unstructured(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		u := &unstructured.Unstructured{Object: doc}
		if err := c.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("images-test"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	out := map[string]*appsv1.Deployment{}
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			out[d.Name] = d
		}
	}
	return out
}

func waitHTTP(t *testing.T, what, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	testkit.EventuallyWithin(t, time.Minute, what, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			last = err
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = errors.New(resp.Status)
			return false
		}
		return true
	})
	if last != nil {
		t.Logf("%s: answered after an earlier %v", what, last)
	}
}

// freeLoopbackPorts finds n ports free on 127.0.0.1 now. Another process
// could take one before the container binds it; the daemon then fails to
// start and the test says so, which has not been seen in practice.
func freeLoopbackPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
