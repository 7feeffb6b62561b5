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
