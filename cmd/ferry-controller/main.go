// Command ferry-controller is Ferry's per-cluster controller daemon.
package main

import (
	"flag"
	"fmt"
	"os"

	"ferry.dev/ferry/internal/version"
)

func main() {
	fs := flag.NewFlagSet("ferry-controller", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version.String("ferry-controller"))
		return
	}
	fmt.Fprintln(os.Stderr, "ferry-controller: not wired yet")
	os.Exit(2)
}
