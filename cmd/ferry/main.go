// Command ferry is the Ferry CLI. See internal/cli.
package main

import (
	"fmt"
	"os"

	"ferry.dev/ferry/internal/cli"
)

func main() {
	if err := cli.NewRootCommand(cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
