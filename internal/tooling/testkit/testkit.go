package testkit

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

// Wait is how long Eventually waits. It is long because a condition that
// holds returns at once: the deadline only matters when the test fails,
// and a short one would fail tests on a busy machine.
const Wait = 60 * time.Second

// PollInterval is how often Eventually checks its condition.
const PollInterval = 10 * time.Millisecond

// Eventually polls cond until it holds, and fails t if it does not within
// Wait. what names the condition in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Wait, what, cond)
}

// EventuallyWithin is Eventually with its own deadline, for the tests whose
// subject is how soon something happens.
func EventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(PollInterval)
	}
}

// LogEnv, when set, makes Logger write debug logs to stderr.
const LogEnv = "FERRY_TEST_LOG"

// Logger is the logger for the code under test: silent, unless the
// FERRY_TEST_LOG environment variable is set, when it logs everything to
// stderr.
func Logger() *slog.Logger {
	if os.Getenv(LogEnv) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
