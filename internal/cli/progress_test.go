package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// termBuffer is a fake terminal: a buffer that says it is one.
type termBuffer struct {
	bytes.Buffer
	width int
}

func (t *termBuffer) TerminalWidth() int { return t.width }

// stepClock returns start, then start+1s, start+2s, ... on each call.
func stepClock(start time.Time) func() time.Time {
	n := -1
	return func() time.Time { n++; return start.Add(time.Duration(n) * time.Second) }
}

func TestProgressOnTerminal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		width int
		run   func(p *progress)
		want  string
	}{
		{"updates rewrite one line, done leaves a final one", 80, func(p *progress) {
			p.Update("waiting for Link east: Synced=False (NamespaceMissing)")
			p.Update("waiting for   Link east:\nConnected=Unknown") // whitespace runs become one space
			p.Done("link east is ready")
		}, "\rwaiting for Link east: Synced=False (NamespaceMissing), 1s…\x1b[K" +
			"\rwaiting for Link east: Connected=Unknown, 2s…\x1b[K" +
			"\r\x1b[K" + "link east is ready (3s)\n"},
		{"cut to the width, so the line never wraps", 20, func(p *progress) {
			p.Update("waiting for 4 mirror objects to be removed")
		}, "\rwaiting for 4 mirr…\x1b[K"},
		{"cut at the narrowest width that shows a status", minStatusWidth, func(p *progress) {
			p.Update("waiting for 4 mirror objects to be removed")
		}, "\rwaiting …\x1b[K"},
		// Narrower, a status would be a few letters, or (width 1) none
		// at all: nothing is shown, and nothing panics.
		{"too narrow for a status: nothing", minStatusWidth - 1, func(p *progress) {
			p.Update("waiting for 4 mirror objects to be removed")
			p.Clear()
		}, ""},
		{"width 2: nothing", 2, func(p *progress) { p.Update("waiting") }, ""},
		{"width 1: nothing", 1, func(p *progress) { p.Update("waiting") }, ""},
		{"too narrow, done still says how it ended", 1, func(p *progress) {
			p.Update("waiting")
			p.Done("ready")
		}, "ready (1s)\n"},
		{"clear only when something is shown", 80, func(p *progress) {
			p.Clear()
			p.Update("x")
			p.Clear()
			p.Clear()
		}, "\rx, 1s…\x1b[K\r\x1b[K"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &termBuffer{width: tc.width}
			p := newProgress(w)
			p.now = stepClock(p.start)
			p.now() // the first tick is the start
			tc.run(p)
			if got := w.String(); got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
			// Status lines (those cleared to the end) must never wrap;
			// Done's final line may, since nothing rewrites it.
			for _, line := range strings.Split(w.String(), "\r") {
				status, ok := strings.CutSuffix(line, clearToEOL)
				if n := len([]rune(status)); ok && n >= tc.width {
					t.Errorf("line %q is %d wide on a %d-column terminal", line, n, tc.width)
				}
			}
		})
	}
}

// TestProgressQuietInPipes: a buffer, a pipe and a regular file are not
// terminals, and get nothing: no status and no control characters.
func TestProgressQuietInPipes(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pw.Close()
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for name, w := range map[string]io.Writer{"buffer": &buf, "pipe": pw, "file": f} {
		p := newProgress(w)
		if p.width != 0 {
			t.Errorf("%s: taken for a terminal %d wide", name, p.width)
		}
		p.Update("waiting for Link east")
		p.Clear()
		p.Done("done")
	}
	if buf.Len() != 0 {
		t.Errorf("buffer got %q", buf.String())
	}
	if st, err := f.Stat(); err != nil || st.Size() != 0 {
		t.Errorf("file got %d bytes (%v)", st.Size(), err)
	}
	pw.Close()
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("pipe got %q", b)
	}
}

// ferryOnTerminal runs ferry against a shared cluster with stderr on a
// fake terminal, as a person at a shell would.
func ferryOnTerminal(t *testing.T, cluster string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env := shared.Get(t)
	var out bytes.Buffer
	errw := &termBuffer{width: 200}
	root := NewRootCommand(Streams{In: strings.NewReader(""), Out: &out, Err: errw})
	root.SetArgs(append([]string{"--kubeconfig", env.Kubeconfig, "--context", cluster}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errw.String(), err
}

// hasControl says whether s holds a terminal control character.
func hasControl(s string) bool {
	return strings.ContainsAny(s, "\r\x1b")
}
