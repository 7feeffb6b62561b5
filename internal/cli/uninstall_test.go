package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	"sigs.k8s.io/yaml"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// startCluster runs one real cluster with Ferry's CRDs for this test.
func startCluster(t *testing.T, name string) *testenv.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{
		Clusters: []string{name}, CRDs: install.CRDDocuments(), AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme},
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(env.Stop)
	return env
}

func TestUninstall(t *testing.T) {
	env := startCluster(t, "east")
	c := env.Clusters[0]
	ctx := context.Background()
	kc := []string{"--kubeconfig", env.Kubeconfig, "--context", "east"}

	// No Links: prints every installed object, in reverse apply order.
	stdout, stderr, err := execFerry(t, append([]string{"uninstall"}, kc...)...)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, stderr)
	}
	kinds := docKinds(t, stdout)
	if got, want := strings.Join(kinds, " "), "PodDisruptionBudget Service Deployment Deployment NetworkPolicy NetworkPolicy Secret RoleBinding RoleBinding ClusterRoleBinding ClusterRoleBinding ClusterRoleBinding Role Role ClusterRole ClusterRole ClusterRole ServiceAccount ServiceAccount CustomResourceDefinition CustomResourceDefinition CustomResourceDefinition Namespace"; got != want {
		t.Errorf("uninstall prints\n %s\nwant\n %s", got, want)
	}
	stdout, _, err = execFerry(t, append([]string{"uninstall", "--keep-crds", "-o", "json"}, kc...)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "CustomResourceDefinition") || !strings.Contains(stdout, `"kind": "List"`) {
		t.Errorf("--keep-crds -o json:\n%.300s", stdout)
	}

	// An export: a warning that deleting the CRD deletes it.
	export := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Name: "foo", Namespace: "default"}}
	if err := c.Client.Create(ctx, export); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err = execFerry(t, append([]string{"uninstall"}, kc...)...); err != nil || !strings.Contains(stderr, "deletes the 1 ServiceExport(s)") {
		t.Errorf("with an export: err %v, stderr %q", err, stderr)
	}

	// A Link: refused, naming it and the way out; --force prints anyway.
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: contract.SystemNamespace}}); err != nil {
		t.Fatal(err)
	}
	link := &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Name: "west", Namespace: contract.SystemNamespace},
		Spec: ferryv1.LinkSpec{ClusterName: "west", GatewayAddresses: []string{"198.18.1.1:4143"},
			GatewayIdentity: "spiffe://west.ferry.local/ns/ferry-system/sa/ferry-gateway"},
	}
	if err := c.Client.Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = execFerry(t, append([]string{"uninstall"}, kc...)...)
	if err == nil {
		t.Fatal("uninstall succeeded with a Link present")
	}
	for _, want := range []string{`1 Link(s) exist in context "east" (ferry-system/west)`, "ferry unlink", "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if stdout != "" {
		t.Errorf("refused, yet printed %q", stdout)
	}
	stdout, stderr, err = execFerry(t, append([]string{"uninstall", "--force"}, kc...)...)
	if err != nil || !strings.Contains(stderr, "--force: 1 Link(s) remain") || len(docKinds(t, stdout)) != len(kinds) {
		t.Errorf("--force: err %v, stderr %q, %d objects", err, stderr, len(docKinds(t, stdout)))
	}
}

func docKinds(t *testing.T, stream string) []string {
	t.Helper()
	var kinds []string
	for _, doc := range strings.Split(stream, "---\n") {
		var m struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("bad YAML: %v", err)
		}
		if m.Kind != "" {
			kinds = append(kinds, m.Kind)
		}
	}
	return kinds
}

// TestKubeErrors: a wrong context, a missing kubeconfig or an unreachable
// cluster each give one line that says what to change.
func TestKubeErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config")
	writeKubeconfig(t, good, "https://127.0.0.1:1", "down")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown context", []string{"--kubeconfig", good, "--context", "nope"}, `context "nope" is not in ` + good + ": use one of down"},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "missing")}, "kubeconfig: "},
		{"no contexts", []string{"--kubeconfig", empty}, "no Kubernetes contexts in " + empty},
		{"unreachable", []string{"--kubeconfig", good}, `cannot reach the API server https://127.0.0.1:1 of context "down"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := execFerry(t, append([]string{"uninstall"}, c.args...)...)
			if err == nil {
				t.Fatal("succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, c.want)
			}
		})
	}
}

func writeKubeconfig(t *testing.T, path, server, context string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[context] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos[context] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts[context] = &clientcmdapi.Context{Cluster: context, AuthInfo: context}
	cfg.CurrentContext = context
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}
