package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// Daemons are the binaries the sandbox runs.
var Daemons = []string{"ferry-controller", "ferry-gateway"}

// EnsureDaemons builds ferry-controller and ferry-gateway into bin/ (Go's
// build cache makes this cheap when nothing changed) and returns the
// directory. FERRY_BIN_DIR skips the build.
func EnsureDaemons() (string, error) {
	if dir := os.Getenv("FERRY_BIN_DIR"); dir != "" {
		return dir, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(bin, ".daemons.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("sandbox: lock: %w", err)
	}
	args := []string{"build", "-trimpath", "-o", bin + "/"}
	for _, d := range Daemons {
		args = append(args, "./cmd/"+d)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sandbox: building the daemons failed (try `make build`): %w\n%s", err, out)
	}
	return bin, nil
}
