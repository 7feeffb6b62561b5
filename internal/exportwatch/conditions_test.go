package exportwatch

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/exports"
)

func TestDesiredConditions(t *testing.T) {
	valid := exports.Status{Key: exports.Key{Namespace: "ns", Name: "foo"}, Generation: 3, Valid: true, Reason: exports.ReasonValid, Message: "Service ns/foo is exported"}
	withReady := func(n int32) *exports.Export { e := base(func(e *exports.Export) { e.ReadyEndpoints = n }); return &e }
	labelled := func(l map[string]string) *exports.Export {
		e := base(func(e *exports.Export) { e.Labels, e.ReadyEndpoints = l, 1 })
		return &e
	}
	annotated := func(a map[string]string) *exports.Export {
		e := base(func(e *exports.Export) { e.Annotations, e.ReadyEndpoints = a, 1 })
		return &e
	}
	older := func(mut ...func(*exports.Export)) exports.Export {
		e := base(mut...)
		e.Created = created.Add(-time.Hour)
		return e
	}
	tests := []struct {
		name string
		in   ConditionInput
		// want[type] = "Status/Reason" and an optional message substring
		want map[string][2]string
	}{
		{
			name: "no service",
			in:   ConditionInput{Status: exports.Status{Key: exports.Key{Namespace: "ns", Name: "foo"}, Generation: 3, Reason: exports.ReasonNoService, Message: "Service ns/foo does not exist"}},
			want: map[string][2]string{
				ConditionValid:    {"False/NoService", "does not exist"},
				ConditionReady:    {"False/Failed", "not exported: Service ns/foo does not exist"},
				ConditionConflict: {"False/NoConflicts", ""},
			},
		},
		{
			name: "valid with ready endpoints",
			in:   ConditionInput{Status: valid, Export: withReady(2)},
			want: map[string][2]string{
				ConditionValid:    {"True/Valid", ""},
				ConditionReady:    {"True/Exported", "every linked cluster"},
				ConditionConflict: {"False/NoConflicts", ""},
			},
		},
		{
			name: "valid without ready endpoints says so",
			in:   ConditionInput{Status: valid, Export: withReady(0)},
			want: map[string][2]string{ConditionReady: {"True/Exported", "no ready endpoints"}},
		},
		{
			name: "allowed clusters named; empty list admits nobody",
			in:   ConditionInput{Status: valid, Export: &exports.Export{AllowedClusters: []string{}, ReadyEndpoints: 1}},
			want: map[string][2]string{ConditionReady: {"True/Exported", "admits no cluster"}},
		},
		{
			name: "identical peer: no conflict",
			in:   ConditionInput{Status: valid, Export: withReady(1), LocalCluster: "east", Peers: []PeerExport{{"west", older()}}},
			want: map[string][2]string{ConditionConflict: {"False/NoConflicts", ""}},
		},
		{
			name: "older peer differs: local conflicts, reasons combined",
			in: ConditionInput{Status: valid, Export: withReady(1), LocalCluster: "east", Peers: []PeerExport{{"west", older(func(e *exports.Export) {
				e.Type = exports.Headless
				e.Ports = []exports.Port{{Name: "http", Protocol: "TCP", Port: 8080}}
				e.SessionAffinity, e.SessionAffinityTimeoutSeconds = "ClientIP", 10
			})}}},
			want: map[string][2]string{ConditionConflict: {"True/PortConflict,SessionAffinityConflict,TypeConflict", "oldest export, in cluster west"}},
		},
		{
			name: "traffic policy and distribution differ",
			in: ConditionInput{Status: valid, Export: withReady(1), LocalCluster: "east", Peers: []PeerExport{{"west", older(func(e *exports.Export) {
				e.InternalTrafficPolicy, e.TrafficDistribution = "Local", "PreferClose"
			})}}},
			want: map[string][2]string{ConditionConflict: {"True/InternalTrafficPolicyConflict,TrafficDistributionConflict", "oldest export, in cluster west"}},
		},
		{
			name: "other ports and other label keys conflict too (the import serves the union of ports, the oldest's labels)",
			in: ConditionInput{Status: valid, Export: withReady(1), LocalCluster: "east", Peers: []PeerExport{{"west", older(func(e *exports.Export) {
				e.Ports = []exports.Port{{Name: "grpc", Protocol: "TCP", Port: 9090}}
				e.Labels = map[string]string{"other": "x"}
			})}}},
			want: map[string][2]string{ConditionConflict: {"True/LabelsConflict,PortConflict", "oldest export, in cluster west"}},
		},
		{
			name: "local is oldest: the condition names the differing peers",
			in: ConditionInput{Status: valid, Export: labelled(map[string]string{"team": "a"}), LocalCluster: "east", Peers: []PeerExport{{"west", base(func(e *exports.Export) {
				e.Created = created.Add(time.Hour)
				e.Labels = map[string]string{"team": "b"}
			})}, {"north", base(func(e *exports.Export) { e.Created = created.Add(time.Hour) })}}},
			want: map[string][2]string{ConditionConflict: {"True/LabelsConflict", "clusters north, west differ"}},
		},
		{
			name: "same creation second: the cluster name breaks the tie",
			in: ConditionInput{Status: valid, Export: annotated(map[string]string{"a": "2"}), LocalCluster: "west", Peers: []PeerExport{{"east", base(func(e *exports.Export) {
				e.Annotations = map[string]string{"a": "1"}
			})}}},
			want: map[string][2]string{ConditionConflict: {"True/AnnotationsConflict", "in cluster east"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DesiredConditions(tc.in)
			if len(got) != 3 {
				t.Fatalf("got %d conditions", len(got))
			}
			for _, c := range got {
				if c.ObservedGeneration != tc.in.Status.Generation {
					t.Errorf("%s: observedGeneration %d", c.Type, c.ObservedGeneration)
				}
				w, ok := tc.want[c.Type]
				if !ok {
					continue
				}
				if sr := string(c.Status) + "/" + c.Reason; sr != w[0] {
					t.Errorf("%s: %s (%s), want %s", c.Type, sr, c.Message, w[0])
				}
				if !strings.Contains(c.Message, w[1]) {
					t.Errorf("%s: message %q lacks %q", c.Type, c.Message, w[1])
				}
			}
		})
	}
}

func TestMergeConditions(t *testing.T) {
	t0 := metav1.NewTime(created)
	t1 := metav1.NewTime(created.Add(time.Minute))
	other := metav1.Condition{Type: "SomeoneElse", Status: metav1.ConditionTrue, Reason: "X", LastTransitionTime: t0}
	desired := DesiredConditions(ConditionInput{Status: exports.Status{Generation: 1, Valid: true, Reason: exports.ReasonValid, Message: "m"}, Export: &exports.Export{ReadyEndpoints: 1}})

	first, changed := MergeConditions([]metav1.Condition{other}, desired, t0)
	if !changed || len(first) != 4 {
		t.Fatalf("first merge: changed %v, %d conditions", changed, len(first))
	}
	again, changed := MergeConditions(first, desired, t1)
	if changed {
		t.Fatal("merging the same conditions again reports a change: the writer would write on every sync")
	}
	if len(again) != 4 {
		t.Fatalf("conditions %v", again)
	}

	// A message change keeps the transition time; a status change moves it.
	desired2 := DesiredConditions(ConditionInput{Status: exports.Status{Generation: 1, Valid: true, Reason: exports.ReasonValid, Message: "m2"}, Export: &exports.Export{ReadyEndpoints: 1}})
	second, changed := MergeConditions(first, desired2, t1)
	if !changed {
		t.Fatal("message change not detected")
	}
	for _, c := range second {
		if c.Type == ConditionValid && !c.LastTransitionTime.Equal(&t0) {
			t.Errorf("Valid moved its transition time on a message change: %v", c.LastTransitionTime)
		}
	}
	invalid := DesiredConditions(ConditionInput{Status: exports.Status{Generation: 1, Reason: exports.ReasonNoService, Message: "gone"}})
	third, _ := MergeConditions(second, invalid, t1)
	for _, c := range third {
		if c.Type == ConditionValid && (c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Equal(&t1)) {
			t.Errorf("Valid: %+v", c)
		}
		if c.Type == "SomeoneElse" && !c.LastTransitionTime.Equal(&t0) {
			t.Errorf("foreign condition changed: %+v", c)
		}
	}
}

func TestConditionMessagesAreBounded(t *testing.T) {
	st := exports.Status{Valid: true, Reason: exports.ReasonValid, Message: strings.Repeat("warning; ", 5000)}
	for _, c := range DesiredConditions(ConditionInput{Status: st, Export: &exports.Export{ReadyEndpoints: 1}}) {
		if len(c.Message) > maxConditionMessage {
			t.Fatalf("%s message of %d bytes", c.Type, len(c.Message))
		}
	}
}

// The export model is Kubernetes-free, so it spells the MCS reasons itself;
// they must stay the MCS API's.
func TestModelReasonsAreTheMCSReasons(t *testing.T) {
	for got, want := range map[string]mcsv1beta1.ServiceExportConditionReason{
		exports.ReasonValid:              mcsv1beta1.ServiceExportReasonValid,
		exports.ReasonNoService:          mcsv1beta1.ServiceExportReasonNoService,
		exports.ReasonInvalidServiceType: mcsv1beta1.ServiceExportReasonInvalidServiceType,
	} {
		if got != string(want) {
			t.Errorf("reason %q, want the MCS API's %q", got, want)
		}
	}
}
