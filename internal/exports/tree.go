package exports

import (
	"bytes"
	"iter"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
)

// treeKey is k as a tree key. The NUL separator sorts before every byte a
// name can hold, so the tree's byte order is CompareKeys' order.
func treeKey(k Key) []byte {
	b := make([]byte, 0, len(k.Namespace)+1+len(k.Name))
	b = append(b, k.Namespace...)
	b = append(b, 0)
	return append(b, k.Name...)
}

func keyOf(b []byte) Key {
	i := bytes.IndexByte(b, 0)
	return Key{Namespace: string(b[:i]), Name: string(b[i+1:])}
}

func all[T any](t *iradix.Tree[T]) iter.Seq2[Key, T] {
	return func(yield func(Key, T) bool) {
		it := t.Root().Iterator()
		for k, v, ok := it.Next(); ok; k, v, ok = it.Next() {
			if !yield(keyOf(k), v) {
				return
			}
		}
	}
}

// diffTrees returns the keys whose export differs between a and b (added,
// removed or changed), sorted. It walks both trees in key order, so it is
// O(n): it is the fallback for a reader that skipped Sets, and the check of
// a whole-set Publish.
func diffTrees(a, b *iradix.Tree[Export]) []Key {
	return diffBy(a, b, func(x, y *Export) bool { return x.Equal(y) })
}

func diffStatuses(a, b *iradix.Tree[Status]) []Key {
	return diffBy(a, b, func(x, y *Status) bool { return x.Equal(y) })
}

func diffBy[T any](a, b *iradix.Tree[T], eq func(x, y *T) bool) []Key {
	var keys []Key
	ia, ib := a.Root().Iterator(), b.Root().Iterator()
	ka, va, oka := ia.Next()
	kb, vb, okb := ib.Next()
	for oka || okb {
		switch c := compareTreeKeys(ka, kb, oka, okb); {
		case c < 0:
			keys = append(keys, keyOf(ka))
			ka, va, oka = ia.Next()
		case c > 0:
			keys = append(keys, keyOf(kb))
			kb, vb, okb = ib.Next()
		default:
			if !eq(&va, &vb) {
				keys = append(keys, keyOf(ka))
			}
			ka, va, oka = ia.Next()
			kb, vb, okb = ib.Next()
		}
	}
	return keys
}

// compareTreeKeys orders two iterator positions; an exhausted one sorts last.
func compareTreeKeys(a, b []byte, okA, okB bool) int {
	switch {
	case !okA:
		return 1
	case !okB:
		return -1
	}
	return bytes.Compare(a, b)
}
