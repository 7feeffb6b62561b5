package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubectlFlags: the connection flags are kubectl's (cli-runtime's
// ConfigFlags), wired through to the requests: --as impersonates, --server
// needs no kubeconfig context, and the user errors stay one line.
func TestKubectlFlags(t *testing.T) {
	shared.Get(t)
	_, _, err := ferryOn(t, importer, "--as", "system:anonymous", "links")
	oneLine(t, err, `list Links: not allowed for your user in context "west"`)
	_, _, err = ferryOn(t, importer, "--as", "someone", "--as-group", "system:masters", "links")
	if err != nil {
		t.Errorf("--as with --as-group system:masters: %v", err)
	}

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = execFerry(t, "--kubeconfig", empty, "--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify", "--request-timeout", "2s", "links")
	oneLine(t, err, `list Links: cannot reach the API server https://127.0.0.1:1 of context "https://127.0.0.1:1"`)
	_, _, err = execFerry(t, "--kubeconfig", empty, "links")
	oneLine(t, err, "no Kubernetes contexts in "+empty+": set --kubeconfig or $KUBECONFIG (or --server with --token)")
}

func TestPluginName(t *testing.T) {
	for argv0, want := range map[string]string{
		"/usr/local/bin/kubectl-ferry": "kubectl ferry",
		"kubectl-ferry.exe":            "kubectl ferry",
		"./bin/ferry":                  "ferry",
		"ferry-dev":                    "ferry",
	} {
		if got := CommandName(argv0); got != want {
			t.Errorf("CommandName(%q) = %q, want %q", argv0, got, want)
		}
	}
	var out bytes.Buffer
	root := NewRootCommandNamed("kubectl ferry", Streams{In: strings.NewReader(""), Out: &out, Err: &out})
	root.SetArgs([]string{"link", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Usage:\n  kubectl ferry link --cluster-name NAME [flags]", "  kubectl ferry --context east link --cluster-name east | kubectl --context west apply -f -"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "kubectl ferry-system") || strings.Contains(out.String(), "\n  ferry ") {
		t.Errorf("help:\n%s", out.String())
	}
}
