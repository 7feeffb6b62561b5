package cli

import (
	"strings"
	"testing"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// TestCompletionScripts: cobra's default `completion` command is on, for
// every shell docs/cli.md names.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "bash completion V2 for ferry",
		"zsh":        "#compdef ferry",
		"fish":       "complete -c ferry",
		"powershell": "Register-ArgumentCompleter",
	} {
		out, _, err := execFerry(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v, output lacks %q", shell, err, want)
		}
	}
}

// TestDynamicCompletion: Link names for unlink, Services for export, read
// from the cluster of the context being completed.
func TestDynamicCompletion(t *testing.T) {
	env := shared.Get(t)
	westLinks(t)
	kc := []string{"--kubeconfig", env.Kubeconfig, "--context"}
	out, _, err := execFerry(t, append([]string{"__complete"}, append(kc, importer, "unlink", "--cluster-name", "")...)...)
	if err != nil || !strings.HasPrefix(out, "east\nnorth\nsouth\n:4\n") {
		t.Errorf("unlink --cluster-name: %v %q", err, out)
	}
	east := env.Cluster(exporter)
	if _, err := east.CreateBackend(t.Context(), testenv.Backend{Namespace: "tools", Name: "grep"}); err != nil {
		t.Fatal(err)
	}
	out, _, err = execFerry(t, append([]string{"__complete"}, append(kc, exporter, "-n", "tools", "export", "")...)...)
	if err != nil || !strings.HasPrefix(out, "svc/grep\n:4\n") {
		t.Errorf("export: %v %q", err, out)
	}
	for _, o := range []string{"json", "yaml", "table"} {
		if out, _, _ := execFerry(t, "__complete", "links", "-o", ""); !strings.Contains(out, o+"\n") {
			t.Errorf("links -o completion lacks %s: %q", o, out)
		}
	}
}
