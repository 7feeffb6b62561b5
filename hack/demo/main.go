// Command demo is `make demo` (and `make sandbox` with -keep): Ferry on
// three local clusters. See internal/tooling/demo.
//
// The clusters live in network namespaces. As root they are made directly;
// otherwise the demo re-runs itself inside an unprivileged user, network and
// mount namespace (unshare -Urnm), where it may make its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"ferry.dev/ferry/internal/tooling/demo"
)

const usernsEnv = "FERRY_DEMO_USERNS"

func main() {
	keep := flag.Bool("keep", false, "leave the clusters running and open a shell to explore them")
	flag.Parse()
	if os.Geteuid() != 0 && os.Getenv(usernsEnv) == "" {
		os.Exit(reexecInUserNamespace())
	}
	if os.Getenv(usernsEnv) != "" {
		if err := prepareUserNamespace(); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Keep: *keep, Out: os.Stdout}); err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
}

func reexecInUserNamespace() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	fmt.Println("==> Not root: re-running inside an unprivileged user+network+mount namespace (unshare -Urnm)")
	cmd := exec.Command("unshare", append([]string{"--user", "--map-root-user", "--net", "--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), usernsEnv+"=1")
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "demo: unshare failed: %v\nThis machine may not allow unprivileged user namespaces; run `sudo make demo` instead.\n", err)
		return 1
	}
	return 0
}

// prepareUserNamespace gives the fresh namespace what `ip netns` needs: a
// private, writable /run, and a loopback that is up.
func prepareUserNamespace() error {
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount a private /run: %w", err)
	}
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %w: %s", err, out)
	}
	return nil
}
