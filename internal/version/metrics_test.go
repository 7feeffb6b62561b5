package version

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector: one series, value 1, labelled with what --version prints,
// and registrable beside the standard Go collectors.
func TestCollector(t *testing.T) {
	oldV, oldC := Version, Commit
	t.Cleanup(func() { Version, Commit = oldV, oldC })
	Version, Commit = "v1.2.3", "0123456789abcdef"
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(), collectors.NewGoCollector(), collectors.NewBuildInfoCollector())
	want := `# HELP ferry_build_info 1, with the version, git revision and Go version this binary was built from as labels.
# TYPE ferry_build_info gauge
ferry_build_info{goversion="` + goVersion() + `",revision="0123456789abcdef",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), BuildInfoMetric); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(goVersion(), "go") {
		t.Errorf("goversion label %q: want the toolchain's go1.x", goVersion())
	}
}
