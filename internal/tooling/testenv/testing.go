package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// This file holds helpers for tests that use an Env; they take a testing.TB
// and fail the test instead of returning errors.

// LazyStartTimeout bounds how long Lazy.Get may take to start its Env.
const LazyStartTimeout = 5 * time.Minute

// Lazy is one Env shared by the tests of a package, started by the first test
// that asks for it, so that the tests which need no cluster run without one:
//
//	var shared = testenv.Lazy{Options: testenv.Options{Clusters: []string{"east"}}}
//
//	func TestMain(m *testing.M) { shared.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := shared.Get(t).Cluster("east")
//		...
//	}
//
// The zero value starts nothing until its Options are set. A Lazy must not be
// copied after first use.
type Lazy struct {
	// Options are passed to Start.
	Options Options

	once sync.Once
	env  *Env
	err  error
}

// Get returns the shared Env, starting it on the first call. If it failed to
// start, Get fails t with the start's error, on this and every later call.
func (l *Lazy) Get(t testing.TB) *Env {
	t.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), LazyStartTimeout)
		defer cancel()
		l.env, l.err = Start(ctx, l.Options)
	})
	if l.err != nil {
		t.Fatalf("testenv: %v", l.err)
	}
	return l.env
}

// Cluster returns the shared Env's first cluster, starting the Env on the
// first call: the one cluster of a package that needs one.
func (l *Lazy) Cluster(t testing.TB) *Cluster {
	t.Helper()
	return l.Get(t).Clusters[0]
}

// Stop stops the Env if one was started; after Stop, Get starts none. Call it
// from TestMain once the tests have run.
func (l *Lazy) Stop() {
	l.once.Do(func() { l.err = fmt.Errorf("testenv: Get after Stop") })
	if l.env != nil {
		l.env.Stop()
	}
}

// Main runs m's tests, stops the Env and exits with the tests' code: the
// whole of a TestMain whose package needs nothing else.
func (l *Lazy) Main(m *testing.M) {
	code := m.Run()
	l.Stop()
	os.Exit(code) //nolint:forbidigo // the whole of a TestMain: it ends the test binary
}

// helperTimeout bounds each API call the helpers below make.
const helperTimeout = time.Minute

func helperCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), helperTimeout)
	t.Cleanup(cancel)
	return ctx
}

var namespaceSeq atomic.Int32

// TestNamespace creates a namespace of the test's own, named prefix-N with N
// unique in the test binary, and returns its name. The namespace is not
// deleted: without a namespace controller it would never finish terminating.
func (c *Cluster) TestNamespace(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaceSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(helperCtx(t), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// PutSecret creates the Secret ns/name with data, or replaces the data of the
// one that is there.
func (c *Cluster) PutSecret(t testing.TB, ns, name string, data map[string][]byte) {
	t.Helper()
	ctx := helperCtx(t)
	secrets := c.Kube.CoreV1().Secrets(ns)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: data}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	s.Data = data
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Impersonate binds user in ns to a Role with rules and returns a client that
// acts as user. The RBAC authorizer learns of new bindings through its own
// informers, so the caller should wait until a request the rules allow
// succeeds before relying on the binding.
func (c *Cluster) Impersonate(t testing.TB, ns, user string, rules []rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	ctx := helperCtx(t)
	rbac := c.Kube.RbacV1()
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.RestConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

// SyncBuffer is a log sink that daemons run in a test write to from several
// goroutines while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
