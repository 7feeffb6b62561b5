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
}

// Full and Short are the two lengths. Full holds R5 to the issue's
// criterion (the lease and 2 s); Short, which runs in every `make test`,
// to what client-go's elector guarantees (TakeoverBound) with 2 s for a
// busy machine, since a single takeover may land anywhere in between.
var (
	Full  = Options{FreezeFor: 60 * time.Second, Freezes: 3, TakeoverLimit: LeaseDuration + R5Slack}
	Short = Options{FreezeFor: 25 * time.Second, Freezes: 1, TakeoverLimit: TakeoverBound + 2*time.Second}
)

// Scenario is one named scenario.
type Scenario struct {
	ID  string
	Run func(ctx context.Context, e *Env, o Options) (Row, error)
}

// Scenarios are run in this order; each leaves the Env as it found it.
var Scenarios = []Scenario{
	{"R6", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.R6(ctx) }},
	{"R5", func(ctx context.Context, e *Env, o Options) (Row, error) { return e.R5(ctx, o) }},
	{"R3", func(ctx context.Context, e *Env, _ Options) (Row, error) { return e.R3(ctx) }},
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
