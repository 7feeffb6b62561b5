package exportwatch

import (
	"fmt"
	"testing"

	"ferry.dev/ferry/internal/exports"
)

// BenchmarkRecompute: one export changes among n; the Watcher builds and
// publishes the next Set (after computeKey, whose cost does not depend on
// n). Sets share what a change does not touch (exports.Publisher.Apply),
// so this is O(log n); it was O(n) while each Set was its own map: 3.6 ms
// and 6.3 MB per change at 10k.
func BenchmarkRecompute(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("exports=%d", n), func(b *testing.B) {
			w, _, _ := statusFixture(n)
			k := key(fmt.Sprintf("svc-%05d", n/2))
			b.ReportAllocs()
			for b.Loop() {
				toggle(w, k)
			}
		})
	}
}

// BenchmarkStatusWriterChange: the StatusWriter's pass after one export
// changed among n, which changes no condition. pass=full reads every key
// (what each change cost before the Watcher told the StatusWriter which
// keys changed; still the cost of a trigger or a resync), pass=changed the
// changed key only. Reads copy the ServiceExport, as the cache does. The
// two Sets alternate, so that building them is not measured.
func BenchmarkStatusWriterChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, full := range []bool{true, false} {
			name := "changed"
			if full {
				name = "full"
			}
			b.Run(fmt.Sprintf("exports=%d/pass=%s", n, name), func(b *testing.B) {
				w, sw, r := statusFixture(n)
				k := key(fmt.Sprintf("svc-%05d", n/2))
				a := w.Current()
				toggle(w, k)
				sets := [2]*exports.Set{a, w.Current()}
				sw.Source = twoSets{w, k}
				var p pass
				if _, err := sw.syncPass(b.Context(), &p, a, true); err != nil {
					b.Fatal(err)
				}
				r.gets = 0
				ops := 0
				b.ReportAllocs()
				for b.Loop() {
					ops++
					if n, err := sw.syncPass(b.Context(), &p, sets[ops%2], full); err != nil || n != 0 {
						b.Fatalf("%d writes, %v", n, err)
					}
				}
				b.ReportMetric(float64(r.gets)/float64(ops), "reads/op")
			})
		}
	}
}

// twoSets is a ChangeSource whose Sets differ in one key only.
type twoSets struct {
	*Watcher
	k exports.Key
}

func (s twoSets) KeysChangedSince(prev, cur *exports.Set) ([]exports.Key, bool) {
	return []exports.Key{s.k}, true
}
