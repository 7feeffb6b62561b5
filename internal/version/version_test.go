package version

import (
	"strings"
	"testing"
)

func TestStringNamesBinaryAndVersion(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v1.2.3"
	got := String("ferry-gateway")
	if !strings.HasPrefix(got, "ferry-gateway v1.2.3 (go") {
		t.Fatalf("String() = %q, want prefix %q", got, "ferry-gateway v1.2.3 (go")
	}
}
