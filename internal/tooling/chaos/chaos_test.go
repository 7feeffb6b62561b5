package chaos

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/internal/tooling/netns"
)

func TestMain(m *testing.M) {
	// The scenarios' clients log nothing worth reading; without a logger
	// controller-runtime prints a stack trace to say so.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// TestScenariosShort runs every scenario in its short form on one sandbox:
// the regressions `make chaos` would find, caught on every change.
func TestScenariosShort(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	e, err := Start(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	var rows []Row
	for _, s := range Scenarios {
		row, err := s.Run(ctx, e, Short)
		if err != nil {
			t.Fatalf("%s: %v", s.ID, err)
		}
		rows = append(rows, row)
		if !row.Pass {
			t.Errorf("%s failed its criterion (%s): %s\n%v", row.ID, row.Criterion, row.Figure, row.Details)
		}
	}
	t.Logf("\n%s", Table(rows))
}
