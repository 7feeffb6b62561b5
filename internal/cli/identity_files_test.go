package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/identity"
)

var errCrash = errors.New("injected crash")

// readRootSet reads ca.crt and ca.key as a reader would, through whatever
// links there are, and checks that they are one pair.
func readRootSet(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	set := map[string][]byte{}
	for _, n := range []string{"ca.crt", "ca.key"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		set[n] = b
	}
	if _, err := identity.LoadCA(set["ca.crt"], set["ca.key"]); err != nil {
		t.Fatalf("ca.crt and ca.key are not one pair: %v", err)
	}
	return set
}

// A `--force` run that stops at any step (identityFault stands in for a
// crash: nothing is cleaned up after it) leaves the old root pair, and a
// run that completes leaves the new pair and nothing else. Both for a
// directory this version wrote and for one of plain files, as earlier
// versions wrote it.
func TestIdentityForceReplacesTheSetAtomically(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain files %v", plain), func(t *testing.T) {
			dir := t.TempDir()
			mustRun(t, "identity", "init", "--out", dir)
			if plain {
				set := readRootSet(t, dir)
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
				for n, b := range set {
					if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			old := readRootSet(t, dir)
			t.Cleanup(func() { identityFault = nil })
			steps := 0
			for crashAt := 0; ; crashAt++ {
				var seen []string
				identityFault = func(step string) error {
					seen = append(seen, step)
					if len(seen) > crashAt {
						return errCrash
					}
					return nil
				}
				_, _, err := runFerry(t, "identity", "init", "--out", dir, "--force")
				if err == nil {
					steps = crashAt
					break
				}
				if !errors.Is(err, errCrash) && !strings.Contains(err.Error(), errCrash.Error()) {
					t.Fatalf("crash at %v: unexpected error %v", seen, err)
				}
				if got := readRootSet(t, dir); !bytes.Equal(got["ca.crt"], old["ca.crt"]) || !bytes.Equal(got["ca.key"], old["ca.key"]) {
					t.Fatalf("crash after steps %v left a set other than the old one", seen)
				}
			}
			if steps < 3 {
				t.Fatalf("only %d steps could fail; the fault hook is not reached", steps)
			}
			identityFault = nil
			got := readRootSet(t, dir)
			if bytes.Equal(got["ca.crt"], old["ca.crt"]) || bytes.Equal(got["ca.key"], old["ca.key"]) {
				t.Fatal("the completed run did not replace both files")
			}
			assertMode(t, filepath.Join(dir, "ca.key"), 0o600)
			assertMode(t, filepath.Join(dir, "ca.crt"), 0o644)
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 4 { // ca.crt, ca.key, the link, one data directory
				t.Errorf("left behind: %v", names)
			}
		})
	}
}
