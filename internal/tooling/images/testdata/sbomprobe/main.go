// Command sbomprobe is a small real Go binary with modules linked in, for
// the SBOM tests: a test binary records no module list.
package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"
)

func main() {
	var g errgroup.Group
	g.Go(func() error { return nil })
	fmt.Println(cmp.Equal(1, 1), g.Wait())
}
