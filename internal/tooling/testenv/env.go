package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	mcscrd "sigs.k8s.io/mcs-api/config/crd"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Options configure Start.
type Options struct {
	// Clusters names the clusters to start, e.g. {"east", "west"}.
	Clusters []string
	// CRDs are installed into every cluster, and Start waits until they are
	// established. MCSCRDs() gives the MCS API's.
	CRDs [][]byte
	// AddToScheme extends the scheme of every cluster's Client.
	AddToScheme []func(*runtime.Scheme) error
	// Cluster, if set, places each named cluster (see ClusterOptions).
	Cluster func(name string) ClusterOptions
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Env is a set of independent local clusters.
type Env struct {
	// Clusters in the order they were named.
	Clusters []*Cluster
	// Kubeconfig is a kubeconfig with one context per cluster, named after it.
	Kubeconfig string
	// Scheme is the scheme every cluster's Client uses.
	Scheme *runtime.Scheme
	// StartupTime is how long Start took, for reports.
	StartupTime time.Duration

	dir      string
	state    *stateDir
	stopOnce sync.Once
	mu       sync.Mutex
	procs    []*Process
}

// Start starts the clusters in parallel and returns when all are ready, with
// CRDs installed. On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if len(opts.Clusters) == 0 {
		return nil, errors.New("testenv: no clusters named")
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	begin := time.Now()
	bins, err := EnsureBinaries()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	for _, add := range append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, mcsv1beta1.Install}, opts.AddToScheme...) {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("testenv: scheme: %w", err)
		}
	}
	state, err := newStateDir()
	if err != nil {
		return nil, err
	}
	env := &Env{dir: state.path, state: state, Scheme: scheme, Clusters: make([]*Cluster, len(opts.Clusters))}

	var wg sync.WaitGroup
	errs := make([]error, len(opts.Clusters))
	for i, name := range opts.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var co ClusterOptions
			if opts.Cluster != nil {
				co = opts.Cluster(name)
			}
			c, err := startCluster(ctx, name, filepath.Join(env.dir, name), bins, state, scheme, co)
			if err != nil {
				errs[i] = err
				return
			}
			env.Clusters[i] = c
			if err := InstallCRDs(ctx, c.RestConfig, opts.CRDs...); err != nil {
				errs[i] = fmt.Errorf("cluster %s: %w", name, err)
				return
			}
			logf("testenv: cluster %s ready at %s", name, c.Server)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		env.Stop()
		return nil, err
	}
	env.Kubeconfig = filepath.Join(env.dir, "kubeconfig")
	if err := writeKubeconfig(env.Kubeconfig, env.Clusters); err != nil {
		env.Stop()
		return nil, err
	}
	env.StartupTime = time.Since(begin)
	return env, nil
}

// StartProcess runs argv (with extra environment variables env) as a child
// of the environment: its output goes to Dir()/<name>.log, it dies with the
// test process, Stop does not leave it behind, and a crashed run's copy is
// reaped by the next run.
func (e *Env) StartProcess(name string, argv, env []string) (*Process, error) {
	p, err := startProcess(e.state, name, filepath.Join(e.dir, name+".log"), argv, env)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// Dir is the environment's state directory: data, logs, kubeconfigs.
func (e *Env) Dir() string { return e.dir }

// Cluster returns the named cluster, or nil.
func (e *Env) Cluster(name string) *Cluster {
	for _, c := range e.Clusters {
		if c != nil && c.Name == name {
			return c
		}
	}
	return nil
}

// Stop stops every process and removes every file. It is safe to call twice.
func (e *Env) Stop() {
	e.stopOnce.Do(func() {
		// Daemons first: they would only log errors while their API servers go.
		e.mu.Lock()
		procs := e.procs
		e.mu.Unlock()
		for _, p := range procs {
			p.stop(10 * time.Second)
		}
		var wg sync.WaitGroup
		for _, c := range e.Clusters {
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); c.Stop() }()
		}
		wg.Wait()
		_ = e.state.remove()
	})
}

// MCSCRDs returns the ServiceExport and ServiceImport CRDs embedded in the
// sigs.k8s.io/mcs-api module, so the version under test is the one in go.mod.
func MCSCRDs() [][]byte {
	return [][]byte{mcscrd.ServiceExportCRD, mcscrd.ServiceImportCRD}
}

func writeKubeconfigFile(path string, cfg *clientcmdapi.Config) error {
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("testenv: write kubeconfig: %w", err)
	}
	return os.Chmod(path, 0o600)
}
