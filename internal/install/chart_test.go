package install

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const chartPath = "../../" + ChartDir

// TestChartUpToDate fails when charts/ferry is not what the renderer
// generates: the chart and `ferry install` must not drift.
func TestChartUpToDate(t *testing.T) {
	chartYAML, err := os.ReadFile(filepath.Join(chartPath, "Chart.yaml"))
	if err != nil {
		t.Fatalf("%v (run go run ./hack/genchart)", err)
	}
	appVersion, err := ChartAppVersion(chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Chart(appVersion)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir(chartPath, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartPath, p)
		got[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s/%s is missing: run go run ./hack/genchart", ChartDir, name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s/%s is stale: run go run ./hack/genchart (-committed +rendered):\n%s", ChartDir, name, cmp.Diff(string(w), string(g)))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is not generated: remove it or generate it", ChartDir, name)
		}
	}
}
