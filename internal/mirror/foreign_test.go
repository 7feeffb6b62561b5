package mirror

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// TestForeignMetadata: labels and annotations that other controllers put on
// mirrors and slices (cloud load balancers, meshes, policy engines) never
// cause a write and survive Ferry's writes; only the keys Ferry manages are
// compared and written.
func TestForeignMetadata(t *testing.T) {
	exported := func() exports.Export {
		e := export("ns", "a", 80)
		e.Labels = map[string]string{"app": "a", "tier": "front"}
		e.Annotations = map[string]string{"team": "x", "doc": "y"}
		return e
	}
	foreignSvc := func(o Objects) {
		s := o.Services[0]
		s.Labels["mesh.example.com/injected"] = "true"
		s.Annotations["cloud.google.com/neg-status"] = `{"network_endpoint_groups":{}}`
		s.Annotations["policy.example.com/checked"] = "ok"
	}
	foreignSlice := func(o Objects) {
		s := o.Slices[0]
		s.Annotations = map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "2024-01-01T00:00:00Z"}
		s.Labels["mesh.example.com/watched"] = "yes"
	}
	wantForeignSvc := map[string]string{
		"mesh.example.com/injected":   "true",
		"cloud.google.com/neg-status": `{"network_endpoint_groups":{}}`,
		"policy.example.com/checked":  "ok",
	}

	cases := []struct {
		name    string
		foreign []func(Objects)
		next    func() exports.Export
		want    []string
		// What the updated Service must hold (labels, annotations) and lack.
		labels, annotations map[string]string
		absent              []string
	}{
		{name: "foreign label and annotation on the Service: no update",
			foreign: []func(Objects){foreignSvc}, next: exported},
		{name: "foreign annotation and label on the slice: no update",
			foreign: []func(Objects){foreignSlice}, next: exported},
		{name: "desired label changed: update keeps foreign keys",
			foreign: []func(Objects){foreignSvc, foreignSlice},
			next: func() exports.Export {
				e := exported()
				e.Labels["tier"] = "back"
				return e
			},
			want:        []string{"update Service ns/a-east metadata"},
			labels:      map[string]string{"app": "a", "tier": "back"},
			annotations: map[string]string{"team": "x", "doc": "y"}},
		{name: "exported keys removed upstream: removed, foreign kept",
			foreign: []func(Objects){foreignSvc},
			next: func() exports.Export {
				e := exported()
				delete(e.Labels, "tier")
				delete(e.Annotations, "doc")
				return e
			},
			want:        []string{"update Service ns/a-east metadata"},
			labels:      map[string]string{"app": "a"},
			annotations: map[string]string{"team": "x"},
			absent:      []string{"tier", "doc"}},
		{name: "every exported key removed upstream: removed, foreign kept",
			foreign: []func(Objects){foreignSvc},
			next: func() exports.Export {
				e := exported()
				e.Labels, e.Annotations = nil, nil
				return e
			},
			want:   []string{"update Service ns/a-east metadata"},
			absent: []string{"app", "tier", "team", "doc"}},
		{name: "spec change with foreign keys: update keeps them",
			foreign: []func(Objects){foreignSvc, foreignSlice},
			next: func() exports.Export {
				e := exported()
				e.SessionAffinity = string(corev1.ServiceAffinityClientIP)
				return e
			},
			want:        []string{"update Service ns/a-east spec"},
			labels:      map[string]string{"app": "a", "tier": "front"},
			annotations: map[string]string{"team": "x", "doc": "y"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			existing := applied(Desired(input(exported())))
			for _, f := range tc.foreign {
				f(existing)
			}
			before := deepCopyObjects(existing)
			in := input(tc.next())
			in.Owned = existing
			ops := Diff(Desired(in), existing)
			if got := opsString(ops); !slices.Equal(got, tc.want) {
				t.Fatalf("ops\n%v\nwant\n%v", got, tc.want)
			}
			if !objectsEqual(before, existing) {
				t.Error("Diff modified an owned (cached) object")
			}
			for _, op := range ops {
				svc, ok := op.Object.(*corev1.Service)
				if !ok {
					continue
				}
				for k, v := range wantForeignSvc {
					if svc.Labels[k] != v && svc.Annotations[k] != v {
						t.Errorf("foreign key %s lost: labels %v annotations %v", k, svc.Labels, svc.Annotations)
					}
				}
				for k, v := range tc.labels {
					if svc.Labels[k] != v {
						t.Errorf("label %s = %q, want %q", k, svc.Labels[k], v)
					}
				}
				for k, v := range tc.annotations {
					if svc.Annotations[k] != v {
						t.Errorf("annotation %s = %q, want %q", k, svc.Annotations[k], v)
					}
				}
				for _, k := range tc.absent {
					if _, ok := svc.Labels[k]; ok {
						t.Errorf("label %s not removed: %v", k, svc.Labels)
					}
					if _, ok := svc.Annotations[k]; ok {
						t.Errorf("annotation %s not removed: %v", k, svc.Annotations)
					}
				}
				if svc.Labels[contract.LabelLink] != "east" || svc.Annotations[contract.AnnotationRemoteService] != "a" {
					t.Errorf("Ferry's own keys lost: %v %v", svc.Labels, svc.Annotations)
				}
				// Applied, the update converges: the next diff writes nothing.
				next := Objects{Services: []*corev1.Service{svc}, Slices: existing.Slices}
				in.Owned = next
				if again := Diff(Desired(in), next); len(again) != 0 {
					t.Errorf("after the update: %v", opsString(again))
				}
			}
		})
	}
}

// TestForeignSliceKeptOnUpdate: a slice rewritten for its endpoints keeps
// other controllers' labels and annotations.
func TestForeignSliceKeptOnUpdate(t *testing.T) {
	existing := applied(Desired(input(export("ns", "a", 80))))
	sl := existing.Slices[0]
	sl.Annotations = map[string]string{"example.com/seen": "1"}
	sl.Labels["example.com/zone"] = "z"
	in := input(export("ns", "a", 80))
	in.Gateway = append(in.Gateway, "10.0.0.3")
	in.Owned = existing
	ops := Diff(Desired(in), existing)
	if got := opsString(ops); !slices.Equal(got, []string{"update EndpointSlice ns/a-east endpoints"}) {
		t.Fatalf("ops %v", got)
	}
	out := ops[0].Object.(*discoveryv1.EndpointSlice)
	if out.Annotations["example.com/seen"] != "1" || out.Labels["example.com/zone"] != "z" ||
		out.Labels[discoveryv1.LabelManagedBy] != contract.ManagedBy || len(out.Endpoints) != 3 {
		t.Errorf("slice labels %v annotations %v endpoints %d", out.Labels, out.Annotations, len(out.Endpoints))
	}
}

// TestStaleFerryKeysRemoved: keys in Ferry's own domain that it no longer
// sets are still Ferry's and are removed.
func TestStaleFerryKeysRemoved(t *testing.T) {
	existing := applied(Desired(input(export("ns", "a", 80))))
	existing.Slices[0].Annotations = map[string]string{contract.Prefix + "old": "x"}
	in := input(export("ns", "a", 80))
	in.Owned = existing
	ops := Diff(Desired(in), existing)
	if got := opsString(ops); !slices.Equal(got, []string{"update EndpointSlice ns/a-east metadata"}) {
		t.Fatalf("ops %v", got)
	}
	if a := ops[0].Object.GetAnnotations(); len(a) != 0 {
		t.Errorf("annotations %v", a)
	}
}

// TestRecoverIgnoresForeignKeys: after a restart, foreign keys are not
// mistaken for exported ones, so the restart writes nothing and a later
// feed snapshot does not remove them.
func TestRecoverIgnoresForeignKeys(t *testing.T) {
	e := export("ns", "a", 80)
	e.Labels = map[string]string{"app": "a"}
	e.Annotations = map[string]string{"team": "x"}
	existing := applied(Desired(input(e)))
	existing.Services[0].Labels["mesh.example.com/injected"] = "true"
	existing.Services[0].Annotations["cloud.example.com/lb"] = "z"
	got := Recover(existing)
	if len(got) != 1 || !maps.Equal(got[0].Labels, e.Labels) || !maps.Equal(got[0].Annotations, e.Annotations) {
		t.Fatalf("Recover: %+v", got)
	}
	in := input(got...)
	in.Owned = existing
	if ops := Diff(Desired(in), existing); len(ops) != 0 {
		t.Errorf("restart writes %v", opsString(ops))
	}
}

func deepCopyObjects(o Objects) Objects {
	var c Objects
	for _, s := range o.Services {
		c.Services = append(c.Services, s.DeepCopy())
	}
	for _, s := range o.Slices {
		c.Slices = append(c.Slices, s.DeepCopy())
	}
	return c
}

func objectsEqual(a, b Objects) bool {
	return slices.EqualFunc(a.Services, b.Services, func(x, y *corev1.Service) bool {
		return maps.Equal(x.Labels, y.Labels) && maps.Equal(x.Annotations, y.Annotations) && len(x.Spec.Ports) == len(y.Spec.Ports)
	}) && slices.EqualFunc(a.Slices, b.Slices, func(x, y *discoveryv1.EndpointSlice) bool {
		return maps.Equal(x.Labels, y.Labels) && maps.Equal(x.Annotations, y.Annotations) && len(x.Endpoints) == len(y.Endpoints)
	})
}
