// Command ferry is the Ferry CLI, and kubectl's ferry plugin when installed
// as kubectl-ferry. See internal/cli.
package main

import (
	"fmt"
	"os"

	"ferry.dev/ferry/internal/cli"
)

func main() {
	// The same binary is kubectl's plugin when named kubectl-ferry.
	root := cli.NewRootCommandNamed(cli.CommandName(os.Args[0]), cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
