package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description of this build. "dev" means the
// binary was built without the Makefile.
var Version = "dev"

// Commit is the git commit this build was made from, set by the Makefile
// (-X ferry.dev/ferry/internal/version.Commit=...). Empty, Revision falls
// back to what the Go toolchain stamped (go build in a checkout, without
// -buildvcs=false).
var Commit = ""

// String is the one-line form printed by every binary's --version.
func String(binary string) string {
	return fmt.Sprintf("%s %s (%s, %s/%s, commit %s)", binary, Version, goVersion(), runtime.GOOS, runtime.GOARCH, Revision())
}

// Revision is the commit of this build: Commit, else the toolchain's
// vcs.revision (with "-dirty" for uncommitted changes), else "unknown".
func Revision() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return revisionOf(bi.Settings)
}

func revisionOf(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return runtime.Version()
}
