package clusterset

import (
	"maps"
	"slices"
	"strings"
	"time"

	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/writer"
)

// DefaultBatchKeys bounds the clusterset services one pass writes. A pass
// that has more to write (the first pass after thousands of mirrors
// arrived, or a full pass after an error) writes the first DefaultBatchKeys
// in key order and leaves the rest pending for the passes that follow at
// once. So each pass ends long before reconcileTimeout (at 10,000 imports
// an unbounded pass was cut by it, and a cut pass starts again from the
// top), each batch's ServiceImports appear as soon as the batch is written
// rather than after every Service exists, and a scoped pass computes the
// desired state of at most this many services, which bounds its memory.
// 256 services are about 800 writes: a few seconds at the API server's pace.
const DefaultBatchKeys = 256

// nextBatch is how soon the pass after a bounded one runs: at once, but
// through the queue, so that events in between are taken with it.
const nextBatch = time.Millisecond

// keyOfOp is the clusterset service an op writes for (its object's
// clusterset label), or false for an op of none.
func keyOfOp(op writer.Op) (Key, bool) {
	svc, ok := op.Object.GetLabels()[contract.LabelClusterset]
	if !ok {
		return Key{}, false
	}
	return Key{Namespace: op.Object.GetNamespace(), Service: svc}, true
}

// firstKeys returns the first limit keys, in key order, that ops write
// for, and the keys after them; in is nil when ops write for no more than
// limit keys (everything is in the batch).
func firstKeys(ops []writer.Op, limit int) (in map[Key]bool, deferred []Key) {
	seen := map[Key]bool{}
	for _, op := range ops {
		if k, ok := keyOfOp(op); ok {
			seen[k] = true
		}
	}
	if len(seen) <= limit {
		return nil, nil
	}
	keys := sortKeys(slices.Collect(maps.Keys(seen)))
	in = make(map[Key]bool, limit)
	for _, k := range keys[:limit] {
		in[k] = true
	}
	return in, keys[limit:]
}

// inBatch keeps the ops of the batch's keys, and those of no key.
func inBatch(ops []writer.Op, batch map[Key]bool) []writer.Op {
	if batch == nil {
		return ops
	}
	out := ops[:0:0]
	for _, op := range ops {
		if k, ok := keyOfOp(op); !ok || batch[k] {
			out = append(out, op)
		}
	}
	return out
}

// splitImports separates what a pass writes first (Services and slices,
// created or changed) from what must wait for them: the ServiceImports,
// which carry the new Services' ClusterIPs, and the deletions.
func splitImports(ops []writer.Op) (first, rest []writer.Op) {
	for _, op := range ops {
		if _, isImport := op.Object.(*mcsv1beta1.ServiceImport); isImport || op.Verb == writer.Delete {
			rest = append(rest, op)
		} else {
			first = append(first, op)
		}
	}
	return first, rest
}

func sortKeys(keys []Key) []Key {
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.String(), b.String()) })
	return keys
}
