package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build. "dev" means the
// binary was built without the Makefile.
var Version = "dev"

// String is the one-line form printed by every binary's --version.
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s, %s/%s)", binary, Version, goVersion(), runtime.GOOS, runtime.GOARCH)
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return runtime.Version()
}
