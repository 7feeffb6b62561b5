package netns

import (
	"os"
	"os/exec"
	"testing"
)

// SkipEnv is the explicit opt-out for developers without root.
const SkipEnv = "FERRY_SKIP_NETNS"

// RequireRoot stops a test that needs network namespaces when it cannot have
// them. Without root it fails, naming the fix, unless FERRY_SKIP_NETNS=1 asks
// to skip; a skip is then reported loudly, never silently counted as a pass.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err != nil {
			tb.Fatalf("network namespace test needs the ip command (Debian: apt-get install iproute2): %v", err)
		}
		return
	}
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("SKIPPED (NOT PASSED): %s needs root for network namespaces; %s=1 opted out. CI runs it as root.", tb.Name(), SkipEnv)
	}
	tb.Fatalf("%s needs root for network namespaces (requirement I is tested in separate namespaces). Run the tests as root (CI does), or set %s=1 to skip these tests explicitly.", tb.Name(), SkipEnv)
}
