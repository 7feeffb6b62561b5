package demo

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/tooling/netns"
)

// The README's first command must keep working: run the whole demo and check
// that what it prints is what it claims.
func TestDemo(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, Options{Out: &out}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	replies := regexp.MustCompile(`<- east/echo-\d: hello #\d from west`).FindAllString(text, -1)
	if len(replies) != 4 {
		t.Errorf("want 4 replies from east's pods, got %d:\n%s", len(replies), text)
	}
	if pods := regexp.MustCompile(`<- east/web-1: web-1, #\d`).FindAllString(text, -1); len(pods) != 2 {
		t.Errorf("want 2 replies from east/web-1, got %d:\n%s", len(pods), text)
	}
	for _, want := range []string{
		"serviceexport demo/echo created",
		"serviceexport demo/web created",
		"all checks passed",
		"east   east      198.19.0.11:4143   True        True      2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if m := regexp.MustCompile(`client connections carried to east\s+(\d+)`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("the demo's egress metric shows no connections:\n%s", text)
	}
}
