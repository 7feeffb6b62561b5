package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// RepoRoot walks up from the working directory to the directory holding
// Ferry's go.mod. Tests run in their package directory, so this finds the repo
// from any package.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module ferry.dev/ferry\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the Ferry repository (no go.mod for ferry.dev/ferry above the working directory)")
		}
		dir = parent
	}
}

var ensureOnce struct {
	sync.Once
	dir string
	err error
}

// EnsureBinaries returns the directory holding kube-apiserver and etcd,
// building them on first use. FERRY_BIN_DIR overrides the location (and then
// nothing is built). The build script is idempotent and cheap when the binaries
// are current; an flock serialises the parallel test packages that all call it.
func EnsureBinaries() (string, error) {
	ensureOnce.Do(func() {
		ensureOnce.dir, ensureOnce.err = ensureBinaries()
	})
	return ensureOnce.dir, ensureOnce.err
}

func ensureBinaries() (string, error) {
	if dir := os.Getenv("FERRY_BIN_DIR"); dir != "" {
		for _, name := range []string{"kube-apiserver", "etcd"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return "", fmt.Errorf("testenv: FERRY_BIN_DIR=%s has no %s: %w", dir, name, err)
			}
		}
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	// The script takes bin/.build.lock itself, so that concurrent test
	// binaries and `make tools` build one at a time.
	cmd := exec.Command("bash", filepath.Join(root, "hack", "build-tools.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: building kube-apiserver and etcd failed (run `make tools` to see why): %w\n%s", err, out)
	}
	return bin, nil
}
