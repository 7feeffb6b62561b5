package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestStringNamesBinaryVersionAndCommit(t *testing.T) {
	oldV, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })
	Version, Commit = "v1.2.3", "0123456789abcdef"
	got := String("ferry-gateway")
	if !strings.HasPrefix(got, "ferry-gateway v1.2.3 (go") || !strings.HasSuffix(got, ", commit 0123456789abcdef)") {
		t.Fatalf("String() = %q", got)
	}
}

func TestRevisionFallsBackToBuildInfo(t *testing.T) {
	for _, c := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, "unknown"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}, "abc"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}, "abc-dirty"},
	} {
		if got := revisionOf(c.settings); got != c.want {
			t.Errorf("%v: %q, want %q", c.settings, got, c.want)
		}
	}
}

func TestSkew(t *testing.T) {
	for _, c := range []struct {
		a, b             string
		supported, known bool
	}{
		{"v0.3.0", "v0.3.7", true, true},
		{"v0.3.0", "v0.2.1", true, true},
		{"v0.2.1", "v0.3.0", true, true},
		{"v0.4.0", "v0.2.9", false, true},
		{"v1.0.0", "v0.9.0", false, true},
		{"v0.3.1-4-gabc1234-dirty", "v0.3.1", true, true},
		{"dev", "v0.3.1", false, false},
		{"v0.3.1", "latest", false, false},
	} {
		s, k := Skew(c.a, c.b)
		if s != c.supported || k != c.known {
			t.Errorf("Skew(%q, %q) = %v, %v; want %v, %v", c.a, c.b, s, k, c.supported, c.known)
		}
	}
}

func TestSkewOfBuilds(t *testing.T) {
	const rev = "3098bdb2c0f1aa55e0c6fd3c47a1bbd0c1e6a2f4"
	for _, c := range []struct {
		name             string
		a, b             Build
		supported, known bool
		same             bool
	}{
		{"one commit, unreleased", Build{"dev", rev}, Build{"3098bdb", rev}, true, true, true},
		{"one commit, versions say skew", Build{"v0.9.0", rev}, Build{"v0.1.0", rev}, true, true, true},
		{"bare commit from an image tag", Build{"dev", rev}, Build{"3098bdb", ""}, true, true, true},
		{"bare commit, the other way round", Build{"3098bdb2c0f1", ""}, Build{"v0.3.0", rev}, true, true, true},
		{"bare commit of another commit", Build{"dev", rev}, Build{"abcdef1", ""}, false, false, false},
		{"two commits, unreleased", Build{"dev", rev}, Build{"dev", "abcdef1234"}, false, false, false},
		{"two commits, releases", Build{"v0.3.0", rev}, Build{"v0.2.0", "abcdef1234"}, true, true, false},
		{"two commits, releases too far apart", Build{"v0.4.0", rev}, Build{"v0.2.0", "abcdef1234"}, false, true, false},
		{"dirty is never the same", Build{"dev", rev + "-dirty"}, Build{"dev", rev + "-dirty"}, false, false, false},
		{"unknown revisions", Build{"dev", "unknown"}, Build{"dev", "unknown"}, false, false, false},
		{"no revision, release tags", Build{"v0.3.0", ""}, Build{"v0.3.1", ""}, true, true, false},
		{"too short to be a commit", Build{"dev", rev}, Build{"3098", ""}, false, false, false},
		{"two bare commits, one the start of the other", Build{"3098bdb2c0f1", ""}, Build{"3098bdb", ""}, true, true, true},
		{"two bare commits of two commits", Build{"3098bdb2c0f1", ""}, Build{"abcdef1", ""}, false, false, false},
	} {
		s, k := SkewOf(c.a, c.b)
		_, same := SameCommit(c.a, c.b)
		if s != c.supported || k != c.known || same != c.same {
			t.Errorf("%s: SkewOf = %v, %v, same commit %v; want %v, %v, %v", c.name, s, k, same, c.supported, c.known, c.same)
		}
	}
}
