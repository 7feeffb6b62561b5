package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Options choose the scenarios' lengths: Full is what `make chaos` runs and
// docs/reliability.md reports; the tests run Short.
type Options struct {
	// FreezeFor is how long R5 keeps the leader frozen, Freezes how many
	// times.
	FreezeFor time.Duration
	Freezes   int
	// TakeoverLimit is R5's criterion for a takeover.
	TakeoverLimit time.Duration
	// KillCycles is how many processes R4 kills; Seed its randomness
	// (zero: from the clock, and the row says which).
	KillCycles int
	Seed       uint64
	// PartitionFor is how long R1 keeps west and east apart.
	PartitionFor time.Duration
	// FloodConns is how many slow connections B1 opens.
	FloodConns int
	// RotationRate is the requests a second S4 sends during the rotation;
	// RotationDwell how long it keeps them flowing after each phase, which
	// must exceed the daemons' TrustCheckInterval (5 s) for the phase's
	// effect on live connections to be seen.
	RotationRate  int
	RotationDwell time.Duration
}

// Full and Short are the two lengths. Full holds R5 to the issue's
// criterion (the lease and 2 s); Short, which runs in every `make test`,
// to what client-go's elector guarantees (TakeoverBound) with 2 s for a
// busy machine, since a single takeover may land anywhere in between.
var (
	Full  = Options{FreezeFor: 60 * time.Second, Freezes: 3, TakeoverLimit: LeaseDuration + R5Slack, KillCycles: 200, PartitionFor: 60 * time.Second, FloodConns: 10000, RotationRate: 100, RotationDwell: 30 * time.Second}
	Short = Options{FreezeFor: 25 * time.Second, Freezes: 1, TakeoverLimit: TakeoverBound + 2*time.Second, KillCycles: 20, PartitionFor: 15 * time.Second, FloodConns: 1000, RotationRate: 100, RotationDwell: 10 * time.Second}
)

// Scenario is one named scenario.
type Scenario struct {
	ID  string
	Run func(ctx context.Context, e *Env, o Options) (Row, error)
}

// Scenarios are run in this order; each leaves the Env as it found it.
var Scenarios = []Scenario{
	{"R1", func(ctx context.Context, e *Env, o Options) (Row, error) {
		return seeded(o, func(seed uint64) (Row, error) { return e.R1(ctx, o.PartitionFor, seed) })
	}},
	{"R6", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.R6(ctx) }},
	{"R5", func(ctx context.Context, e *Env, o Options) (Row, error) { return e.R5(ctx, o) }},
	{"R4", func(ctx context.Context, e *Env, o Options) (Row, error) {
		return seeded(o, func(seed uint64) (Row, error) { return e.R4(ctx, o.KillCycles, seed) })
	}},
	{"B1", func(ctx context.Context, e *Env, o Options) (Row, error) { return e.B1(ctx, o.FloodConns) }},
	{"B2", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.B2(ctx) }},
	{"B3", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.B3(ctx) }},
	{"R3", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.R3(ctx) }},
	// Last: it leaves the sandbox on a new root (Env.adoptRotation).
	{"S4", func(ctx context.Context, e *Env, o Options) (Row, error) {
		return e.S4(ctx, o.RotationRate, o.RotationDwell)
	}},
}

// seeded runs a scenario that makes random choices with o.Seed, or a seed
// from the clock, and says which in the row and in an error.
func seeded(o Options, run func(seed uint64) (Row, error)) (Row, error) {
	seed := o.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	row, err := run(seed)
	row.detail("seed %d (-seed reproduces the run's choices)", seed)
	if err != nil {
		err = fmt.Errorf("seed %d: %w", seed, err)
	}
	return row, err
}

// Table renders rows as the Markdown table docs/reliability.md holds.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| id | scenario | pass criterion | measured | pass |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		pass := "**no**"
		if r.Pass {
			pass = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.ID, r.Scenario, r.Criterion, r.Figure, pass)
	}
	for _, r := range rows {
		for _, d := range r.Details {
			fmt.Fprintf(&b, "\n- %s: %s", r.ID, d)
		}
	}
	b.WriteString("\n")
	return b.String()
}
