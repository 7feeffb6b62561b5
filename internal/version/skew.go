package version

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxMinorSkew is how many minor versions the CLI and the daemons, and the
// daemons among themselves, may be apart within one major version. Ferry's
// Link CRD, feed protocol and tunnel header only ever gain fields in a
// minor release and keep reading the previous minor's, so one minor apart
// works in either direction (an upgrade runs the new CLI against the old
// daemons, then rolls them); two is not tested and not supported.
const MaxMinorSkew = 1

// Release is a parsed release version: vMAJOR.MINOR.PATCH.
type Release struct{ Major, Minor, Patch int }

func (r Release) String() string { return fmt.Sprintf("v%d.%d.%d", r.Major, r.Minor, r.Patch) }

// releasePrefix accepts a release and what git describe appends to one
// ("v0.3.1-4-gabc1234-dirty" is v0.3.1 plus commits).
var releasePrefix = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?$`)

// ParseRelease reads a version such as "v0.3.1"; ok is false for "dev",
// "latest", a digest and anything else that names no release.
func ParseRelease(s string) (Release, bool) {
	m := releasePrefix.FindStringSubmatch(s)
	if m == nil {
		return Release{}, false
	}
	var r Release
	r.Major, _ = strconv.Atoi(m[1])
	r.Minor, _ = strconv.Atoi(m[2])
	r.Patch, _ = strconv.Atoi(m[3])
	return r, true
}

// Skew compares two versions: supported when both are releases of one
// major version at most MaxMinorSkew minors apart. known is false when
// either names no release (nothing can be said).
func Skew(a, b string) (supported, known bool) {
	ra, okA := ParseRelease(a)
	rb, okB := ParseRelease(b)
	if !okA || !okB {
		return false, false
	}
	d := ra.Minor - rb.Minor
	return ra.Major == rb.Major && d <= MaxMinorSkew && -d <= MaxMinorSkew, true
}

// Build is what a binary says of itself: its version and its revision
// (Revision()). Revision is empty when only the version is known, e.g.
// from an image tag.
type Build struct{ Version, Revision string }

// bareCommit is what git describe --always gives in a repository without
// tags: an abbreviated commit and nothing else.
var bareCommit = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// SameCommit says whether a and b were built from one clean commit, and
// names it: their revisions are equal, or a side that knows only a version
// has a bare commit there, the start of the other's revision or bare
// commit. A dirty build is never the same as anything: its tree is not in
// git.
func SameCommit(a, b Build) (string, bool) {
	clean := func(r string) bool { return r != "" && r != "unknown" && !strings.HasSuffix(r, "-dirty") }
	switch {
	case clean(a.Revision) && clean(b.Revision):
		return a.Revision, a.Revision == b.Revision
	case clean(a.Revision) && b.Revision == "" && bareCommit.MatchString(b.Version):
		return a.Revision, strings.HasPrefix(a.Revision, b.Version)
	case clean(b.Revision) && a.Revision == "" && bareCommit.MatchString(a.Version):
		return b.Revision, strings.HasPrefix(b.Revision, a.Version)
	case a.Revision == "" && b.Revision == "" && bareCommit.MatchString(a.Version) && bareCommit.MatchString(b.Version):
		// Two abbreviations: git makes each unique in its repository.
		long, short := a.Version, b.Version
		if len(short) > len(long) {
			long, short = short, long
		}
		return long, strings.HasPrefix(long, short)
	}
	return "", false
}

// SkewOf compares two builds: one commit works with itself whatever its
// version says ("dev", a bare commit); otherwise it is Skew of the
// versions.
func SkewOf(a, b Build) (supported, known bool) {
	if _, same := SameCommit(a, b); same {
		return true, true
	}
	return Skew(a.Version, b.Version)
}
