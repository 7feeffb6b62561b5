// Command genchart writes the Helm chart in charts/ferry from the same
// renderer as `ferry install` (internal/install), so the two cannot drift;
// `go test ./internal/install` fails when the checked-in chart is stale.
//
//	go run ./hack/genchart                       # keep the chart's appVersion
//	go run ./hack/genchart -app-version v0.2.0   # a release
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ferry.dev/ferry/internal/install"
)

// defaultAppVersion is used when there is no chart yet.
const defaultAppVersion = "v0.1.0"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genchart:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", install.ChartDir, "chart directory to (re)write")
	appVersion := flag.String("app-version", "", "image tag and appVersion (default: the existing Chart.yaml's, else "+defaultAppVersion+")")
	flag.Parse()
	if *appVersion == "" {
		*appVersion = defaultAppVersion
		if b, err := os.ReadFile(filepath.Join(*dir, "Chart.yaml")); err == nil {
			if *appVersion, err = install.ChartAppVersion(b); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	files, err := install.Chart(*appVersion)
	if err != nil {
		return err
	}
	// Remove generated files that are no longer produced (a renamed object).
	for _, sub := range []string{"templates", "crds"} {
		old, _ := filepath.Glob(filepath.Join(*dir, sub, "*"))
		for _, p := range old {
			rel, _ := filepath.Rel(*dir, p)
			if _, keep := files[filepath.ToSlash(rel)]; !keep {
				if err := os.Remove(p); err != nil {
					return err
				}
			}
		}
	}
	for name, data := range files {
		p := filepath.Join(*dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d files to %s (appVersion %s)\n", len(files), *dir, *appVersion)
	return nil
}
