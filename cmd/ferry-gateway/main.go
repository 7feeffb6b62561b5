// Command ferry-gateway is Ferry's per-cluster gateway daemon.
package main

import (
	"flag"
	"fmt"
	"os"

	"ferry.dev/ferry/internal/version"
)

func main() {
	fs := flag.NewFlagSet("ferry-gateway", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version.String("ferry-gateway"))
		return
	}
	fmt.Fprintln(os.Stderr, "ferry-gateway: not wired yet")
	os.Exit(2)
}
