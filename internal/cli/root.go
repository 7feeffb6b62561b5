package cli

import (
	"bytes"
	"context"
	"io"
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

// NewRootCommand builds the whole `ferry` command tree.
func NewRootCommand(s Streams) *cobra.Command {
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
	addKubeFlags(root.PersistentFlags())
	root.AddCommand(newVersionCommand())
	root.AddCommand(newInstallCommand())
	root.AddCommand(newUninstallCommand())
	root.AddCommand(newIdentityCommand())
	root.AddCommand(newLinkCommand())
	root.AddCommand(newUnlinkCommand())
	root.AddCommand(newExportCommand())
	root.AddCommand(newUnexportCommand())
	root.AddCommand(newLinksCommand())
	root.AddCommand(newGatewaysCommand())
	root.AddCommand(newTrafficCommand())
	root.AddCommand(newCheckCommand())
	return root
}
