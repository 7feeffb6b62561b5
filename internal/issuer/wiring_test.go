package issuer

import (
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"ferry.dev/ferry/internal/certsecret"
)

// What cmd/ferry-controller relies on: the Issuer and the Loader are
// manager Runnables that decide leader election themselves, and the
// manager's recorder fits Options.Recorder.
var (
	_ manager.Runnable               = (*Issuer)(nil)
	_ manager.LeaderElectionRunnable = (*Issuer)(nil)
	_ manager.Runnable               = (*certsecret.Loader)(nil)
	_ manager.LeaderElectionRunnable = (*certsecret.Loader)(nil)
	_ events.EventRecorder           = recorder.EventRecorder(nil)
)
