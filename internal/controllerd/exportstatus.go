package controllerd

import (
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"ferry.dev/ferry/internal/exportwatch"
)

// addExportStatus runs the validation of local exports: a Watcher computes
// the export set (as the gateway does) and a StatusWriter, on the leader,
// writes each ServiceExport's Valid, Ready and Conflict conditions. The
// writer compares with the other clusters' exports of the same service
// that the importer's feeds delivered (peers), and is triggered whenever a
// feed brings news. It writes through a plain client: it reads from the
// Watcher's own cache, so the manager's read-your-writes bookkeeping would
// only add an informer nobody reads.
func addExportStatus(mgr manager.Manager, cfg *rest.Config, scheme *runtime.Scheme, cluster string, log *slog.Logger) (*exportwatch.StatusWriter, error) {
	w, err := exportwatch.NewWatcher(cfg, exportwatch.WatcherOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("exports watcher: %w", err)
	}
	if err := mgr.Add(w); err != nil {
		return nil, err
	}
	plain, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("exports status client: %w", err)
	}
	sw := &exportwatch.StatusWriter{Source: w, Reader: w.Reader(), Client: plain, LocalCluster: cluster, Logger: log}
	if err := mgr.Add(sw); err != nil {
		return nil, err
	}
	return sw, nil
}
