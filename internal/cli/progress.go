package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Terminal control: carriage return rewrites the line from its start, and
// "erase in line" (EL, mode 0) clears what a longer earlier status left.
const (
	carriageReturn = "\r"
	clearToEOL     = "\x1b[K"
)

// defaultTerminalWidth is assumed when a terminal will not tell its size.
const defaultTerminalWidth = 80

// minStatusWidth is the narrowest terminal that gets a status line: cut
// to fewer columns, the status is a few letters that say nothing, and a
// width of 1 leaves no column at all that the cursor does not wrap from.
const minStatusWidth = 10

// progress shows a long wait as one status line that rewrites itself, on a
// terminal only. In a pipe or a file it writes nothing at all: a log reader
// wants the command's result and its error, not a frame of every second,
// and a script must never find control characters on stderr.
type progress struct {
	w     io.Writer
	width int // 0: not a terminal
	start time.Time
	now   func() time.Time
	shown bool // a status is on the line, to clear before other output
}

// newProgress writes to w (stderr) when w is a terminal.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, width: terminalWidth(w), start: time.Now(), now: time.Now}
}

// fakeTerminal is how tests (and any writer that knows better than its
// file descriptor) say that a writer is a terminal of a given width.
type fakeTerminal interface {
	TerminalWidth() int
}

// terminalWidth is w's width when it is a terminal, else 0. TERM=dumb
// counts as no terminal: it may not understand clear-to-EOL.
func terminalWidth(w io.Writer) int {
	if t, ok := w.(fakeTerminal); ok {
		return t.TerminalWidth()
	}
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || os.Getenv("TERM") == "dumb" {
		return 0
	}
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return 0
	}
	if width, _, err := term.GetSize(fd); err == nil && width > 0 {
		return width
	}
	return defaultTerminalWidth
}

// Update shows status with the time waited so far, e.g. "waiting for Link
// east: Synced=False (NamespaceMissing), 12s…". The line is cut to the
// terminal's width: a line that wrapped could not be rewritten in place.
func (p *progress) Update(status string) {
	if p.width < minStatusWidth {
		return
	}
	line := fmt.Sprintf("%s, %s…", strings.Join(strings.Fields(status), " "), p.now().Sub(p.start).Round(time.Second))
	if r := []rune(line); len(r) > p.width-1 {
		line = string(r[:p.width-2]) + "…"
	}
	fmt.Fprint(p.w, carriageReturn+line+clearToEOL)
	p.shown = true
}

// Clear removes the status line, before the command prints a line of its
// own on the same terminal (stdout and stderr usually share it).
func (p *progress) Clear() {
	if p.shown {
		fmt.Fprint(p.w, carriageReturn+clearToEOL)
		p.shown = false
	}
}

// Done replaces the status line with a final one that stays. Like Update,
// it writes nothing in a pipe, where the command's own output says how it
// ended.
func (p *progress) Done(final string) {
	if p.width == 0 {
		return
	}
	p.Clear()
	fmt.Fprintf(p.w, "%s (%s)\n", final, p.now().Sub(p.start).Round(time.Second))
}
