package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// Severity says what a failed check means for the exit code.
type Severity string

const (
	// SeverityFatal: Ferry does not work; `ferry check` exits non-zero.
	SeverityFatal Severity = "fatal"
	// SeverityWarning: it works now but needs attention soon.
	SeverityWarning Severity = "warning"
)

// Check is one named health check, as in linkerd's `check`: a name that
// says what should be true, a severity, and a hint that says how to fix it.
type Check struct {
	Name     string
	Severity Severity
	// Hint is printed when the check fails; a Run error made by withHint
	// replaces it with one that names the objects at fault.
	Hint string
	// Requires names an earlier check that must pass first. When it did
	// not, this check is skipped: its failure would only repeat that one.
	Requires string
	// Run returns nil when the check passes, or an error that says what is
	// wrong. skipf marks a check that cannot be run (e.g. not allowed).
	Run func(ctx context.Context) error
}

// Check outcomes.
const (
	statusPassed  = "passed"
	statusFailed  = "failed"
	statusWarning = "warning"
	statusSkipped = "skipped"
)

// checkRetryInterval is the pause between attempts of a failing check
// within --wait: checks read a handful of objects, so once a second costs
// the API server nothing.
const checkRetryInterval = time.Second

// CheckResult is one check's outcome, as `ferry check -o json` prints it.
type CheckResult struct {
	Name     string   `json:"name"`
	Severity Severity `json:"severity"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Hint     string   `json:"hint,omitempty"`
	// Detail is what a passed check found, when that is worth reading
	// (such as the roots a cluster trusts during a rotation).
	Detail   string `json:"detail,omitempty"`
	Attempts int    `json:"attempts"`
}

// CheckReport is the whole run.
type CheckReport struct {
	Context string        `json:"context"`
	Passed  bool          `json:"passed"`
	Checks  []CheckResult `json:"checks"`
}

// CheckFailedError is returned when a fatal check failed. The report has
// already been printed, so its message is only a summary; main prints it
// on one line and exits 1.
type CheckFailedError struct {
	Failed []string
}

func (e *CheckFailedError) Error() string {
	return fmt.Sprintf("%d fatal check(s) failed (%s): follow the hints above, then run `ferry check` again", len(e.Failed), strings.Join(e.Failed, "; "))
}

// hintedError carries a hint specific to what failed, e.g. naming the Link.
type hintedError struct {
	err  error
	hint string
}

func (h *hintedError) Error() string { return h.err.Error() }
func (h *hintedError) Unwrap() error { return h.err }

func withHint(err error, format string, args ...any) error {
	return &hintedError{err: err, hint: fmt.Sprintf(format, args...)}
}

// skipError marks a check that could not run, e.g. because the user may not
// read a Secret: that is not a failure of Ferry, and retrying cannot help.
type skipError struct{ reason string }

func (s *skipError) Error() string { return s.reason }

func skipf(format string, args ...any) error { return &skipError{reason: fmt.Sprintf(format, args...)} }

// passError passes a check with a detail for the report.
type passError struct{ detail string }

func (p *passError) Error() string { return p.detail }

func passedf(format string, args ...any) error {
	return &passError{detail: fmt.Sprintf(format, args...)}
}

func newCheckCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		wait   time.Duration
		output *string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that Ferry works in this cluster, with a hint for each problem",
		Long: `Run named checks against the cluster of the current context: the CRDs, the
controller's leader lease, the gateway's readiness, the issuer and gateway
certificates, every Link's status and identity, mirrors and their endpoints,
orphaned objects, and the egress ports. Each failing check prints what is
wrong and a hint that says how to fix it.

A failing check is retried until it passes or --wait has passed (the whole
run shares one deadline); on a terminal, a status line on stderr shows which
check is being retried and why. Exit status: 0 when every fatal check passed
(warnings allowed), 1 otherwise.`,
		Example: `  ferry --context west check
  ferry --context west check --wait 2m       # after an install or a link
  ferry --context west check -o json | jq '.checks[] | select(.status != "passed")'
  ferry --context west check -o jsonpath='{range .checks[?(@.status!="passed")]}{.name}{"\n"}{end}'`,
		Args: noArgs("check"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			c := &checker{k: k, now: time.Now}
			report := CheckReport{Context: k.Context}
			w := cmd.OutOrStdout()
			stream := *output == outputTable
			if stream {
				fmt.Fprintf(w, "Checking Ferry in context %q\n\n", k.Context)
			}
			p := newProgress(cmd.ErrOrStderr())
			retrying := func(c Check, err error) {
				p.Update(fmt.Sprintf("waiting for %q: %s", c.Name, firstLine(err.Error())))
			}
			report.Checks = runChecks(cmd.Context(), c.checks(), wait, retrying, func(r CheckResult) {
				p.Clear()
				if stream {
					printCheckResult(w, r)
				}
			})
			failed := fatalFailures(report.Checks)
			report.Passed = len(failed) == 0
			if stream {
				printCheckSummary(w, report.Checks)
			} else if err := printValue(w, *output, report, nil); err != nil {
				return err
			}
			if len(failed) > 0 {
				return &CheckFailedError{Failed: failed}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "retry failing checks for up to this long (e.g. 30s), for use right after install or link")
	output = addOutputFlag(cmd, outputTable, append([]string{outputTable}, structuredFormats...)...)
	return cmd
}

// runChecks runs the checks in order, retrying each failing one until the
// shared deadline (saying so to retrying before each pause), and reports
// each result as soon as it is known.
func runChecks(ctx context.Context, checks []Check, wait time.Duration, retrying func(Check, error), report func(CheckResult)) []CheckResult {
	deadline := time.Now().Add(wait)
	passed := map[string]bool{}
	var out []CheckResult
	for _, c := range checks {
		r := CheckResult{Name: c.Name, Severity: c.Severity}
		if c.Requires != "" && !passed[c.Requires] {
			r.Status, r.Error = statusSkipped, "needs: "+c.Requires
		} else {
			err := attempt(ctx, c, deadline, &r.Attempts, retrying)
			var skip *skipError
			var pass *passError
			switch {
			case err == nil:
				r.Status = statusPassed
				passed[c.Name] = true
			case errors.As(err, &pass):
				r.Status, r.Detail = statusPassed, pass.detail
				passed[c.Name] = true
			case errors.As(err, &skip):
				r.Status, r.Error = statusSkipped, skip.reason
			default:
				r.Status, r.Error, r.Hint = statusFailed, err.Error(), c.Hint
				if c.Severity == SeverityWarning {
					r.Status = statusWarning
				}
				var h *hintedError
				if errors.As(err, &h) {
					r.Hint = h.hint
				}
			}
		}
		report(r)
		out = append(out, r)
	}
	return out
}

func attempt(ctx context.Context, c Check, deadline time.Time, attempts *int, retrying func(Check, error)) error {
	for {
		*attempts++
		err := c.Run(ctx)
		var skip *skipError
		var pass *passError
		if err == nil || errors.As(err, &skip) || errors.As(err, &pass) || ctx.Err() != nil || time.Now().Add(checkRetryInterval).After(deadline) {
			return err
		}
		retrying(c, err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(checkRetryInterval):
		}
	}
}

func fatalFailures(rs []CheckResult) []string {
	var out []string
	for _, r := range rs {
		if r.Status == statusFailed {
			out = append(out, r.Name)
		}
	}
	return out
}

var checkSymbols = map[string]string{statusPassed: "✔", statusFailed: "✘", statusWarning: "⚠", statusSkipped: "-"}

// printCheckResult writes one check: a line with its symbol and name and,
// when it did not pass, what is wrong and the hint, indented below it.
func printCheckResult(w io.Writer, r CheckResult) {
	fmt.Fprintf(w, "%s %s\n", checkSymbols[r.Status], r.Name)
	switch r.Status {
	case statusPassed:
		if r.Detail != "" {
			fmt.Fprintf(w, "    %s\n", r.Detail)
		}
	case statusSkipped:
		fmt.Fprintf(w, "    skipped: %s\n", r.Error)
	case statusFailed, statusWarning:
		fmt.Fprintf(w, "    %s\n", r.Error)
		if r.Hint != "" {
			fmt.Fprintf(w, "    hint: %s\n", r.Hint)
		}
	}
}

func printCheckSummary(w io.Writer, rs []CheckResult) {
	n := map[string]int{}
	for _, r := range rs {
		n[r.Status]++
	}
	status := "all checks passed"
	if n[statusFailed] > 0 {
		status = plural(n[statusFailed], "fatal failure")
	} else if n[statusWarning] > 0 {
		status = "passed with warnings"
	}
	fmt.Fprintf(w, "\nStatus: %s (%d passed, %d failed, %s, %d skipped)\n",
		status, n[statusPassed], n[statusFailed], plural(n[statusWarning], "warning"), n[statusSkipped])
}
