package clusterset

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/writer"
)

func opFor(ns, svc string, obj client.Object) writer.Op {
	obj.SetNamespace(ns)
	if svc != "" {
		obj.SetLabels(map[string]string{contract.LabelClusterset: svc})
	}
	return writer.Op{Verb: writer.Create, Object: obj}
}

func TestFirstKeysAndInBatch(t *testing.T) {
	ops := []writer.Op{
		opFor("a", "web", &corev1.Service{}),
		opFor("a", "web", &mcsv1beta1.ServiceImport{}),
		opFor("a", "db", &corev1.Service{}),
		opFor("b", "api", &corev1.Service{}),
		opFor("a", "", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "no-key"}}),
	}
	for _, tc := range []struct {
		limit     int
		wantIn    []Key // nil: no batch, everything written
		wantLater []Key
		wantOps   int
	}{
		{limit: 3, wantOps: 5},
		{limit: 10, wantOps: 5},
		{limit: 2, wantIn: []Key{{"a", "db"}, {"a", "web"}}, wantLater: []Key{{"b", "api"}}, wantOps: 4},
		{limit: 1, wantIn: []Key{{"a", "db"}}, wantLater: []Key{{"a", "web"}, {"b", "api"}}, wantOps: 2},
	} {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			in, later := firstKeys(ops, tc.limit)
			var got []Key
			for k := range in {
				got = append(got, k)
			}
			if !slices.Equal(sortKeys(got), tc.wantIn) || !slices.Equal(later, tc.wantLater) {
				t.Errorf("firstKeys = %v, later %v; want %v, later %v", got, later, tc.wantIn, tc.wantLater)
			}
			if kept := inBatch(ops, in); len(kept) != tc.wantOps {
				t.Errorf("inBatch kept %d ops, want %d (the batch's and the key-less)", len(kept), tc.wantOps)
			}
		})
	}
}

func TestTakeBoundsKeys(t *testing.T) {
	var p pendingKeys
	for i := range 5 {
		p.touch(false, Key{"ns", fmt.Sprintf("s%d", i)})
	}
	all, keys, more := p.take(2)
	if all || !more || !slices.Equal(keys, []Key{{"ns", "s0"}, {"ns", "s1"}}) {
		t.Fatalf("take(2) = %v %v %v; want the first two keys and more", all, keys, more)
	}
	p.touch(false, Key{"ns", "s0"})
	_, keys, more = p.take(10)
	if more || !slices.Equal(keys, []Key{{"ns", "s0"}, {"ns", "s2"}, {"ns", "s3"}, {"ns", "s4"}}) {
		t.Fatalf("take(10) = %v, more %v; want what was left and the new key", keys, more)
	}
	p.touch(true)
	all, keys, more = p.take(1)
	if !all || len(keys) != 0 || more {
		t.Fatalf("take after touch(true) = %v %v %v; want all", all, keys, more)
	}
}
