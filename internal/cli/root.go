package cli

import (
	"io"

	"github.com/spf13/cobra"

	"ferry.dev/ferry/internal/version"
)

// Streams are where a command reads and writes; tests pass buffers.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
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
