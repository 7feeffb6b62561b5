package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/internal/version"
)

// Streams are where a command reads and writes; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Run runs one ferry command in this process, as the binary would with
// nothing on standard input, and returns what it wrote: for tools (the demo,
// the chaos scenarios) and tests that drive the CLI as a user does.
func Run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := NewRootCommand(Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// PluginBinary is the executable name under which kubectl runs ferry as a
// plugin: `kubectl ferry ...` finds kubectl-ferry on PATH.
const PluginBinary = "kubectl-ferry"

// CommandName is what the user typed to run this binary, judged from its
// executable name (os.Args[0]): "kubectl ferry" for kubectl-ferry, else
// "ferry". Help and usage use it, so a plugin user reads commands they can
// paste.
func CommandName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if base == PluginBinary {
		return "kubectl ferry"
	}
	return "ferry"
}

// NewRootCommand builds the whole `ferry` command tree.
func NewRootCommand(s Streams) *cobra.Command { return NewRootCommandNamed("ferry", s) }

// NewRootCommandNamed builds the command tree for a binary invoked as name
// (see CommandName): usage lines and examples say name instead of ferry.
func NewRootCommandNamed(name string, s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry connects Services across independent Kubernetes clusters",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetVersionTemplate(version.String("ferry") + "\n")
	kf := addKubeFlags(root.PersistentFlags())
	root.AddCommand(newVersionCommand(kf))
	root.AddCommand(newInstallCommand())
	root.AddCommand(newUninstallCommand(kf))
	root.AddCommand(newIdentityCommand(kf))
	root.AddCommand(newLinkCommand(kf))
	root.AddCommand(newUnlinkCommand(kf))
	root.AddCommand(newExportCommand(kf))
	root.AddCommand(newUnexportCommand(kf))
	root.AddCommand(newLinksCommand(kf))
	root.AddCommand(newGatewaysCommand(kf))
	root.AddCommand(newTrafficCommand(kf))
	root.AddCommand(newCheckCommand(kf))
	if name != "ferry" {
		renameExamples(root, name)
	}
	return root
}

// renameExamples makes usage ("Usage: kubectl ferry check") and every
// example start with name. Cobra's display-name annotation covers the
// usage lines; examples are text, written for "ferry".
func renameExamples(root *cobra.Command, name string) {
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: name}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Example = examplePrefix.ReplaceAllString(c.Example, "${1}"+name+" ")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// examplePrefix is "ferry " where a command line starts (after indentation
// or a pipe), not inside a word such as ferry-system.
var examplePrefix = regexp.MustCompile(`(?m)(^\s*|\|\s*|\$\(|<\()ferry `)
