package conformance

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/tooling/sandbox"
	"ferry.dev/ferry/internal/tooling/testenv"
)

// Clusters are the suite's contexts, in its order: it deploys and exports
// from the first, and treats the second as the other member of the set.
var Clusters = []string{"east", "west"}

// LabelFilter and Skip leave out the specs that exec into a pod (the sandbox
// has no kubelet to run a command in a container; the unlabelled Required
// spec that Skip names is one of them), and the one that looks for MCS
// EndpointSlices of a ClusterSetIP import, which Ferry does not write
// (docs/mcs-conformance.md says why).
const (
	LabelFilter = "!DNS && !Connectivity && !EndpointSlice"
	Skip        = "Connectivity to a service that is not exported"
)

// LinkTimeout bounds how long the two Links may take to connect.
const LinkTimeout = 90 * time.Second

// SuiteTimeout bounds one run of the suite.
const SuiteTimeout = 20 * time.Minute

// SetupTimeout bounds Start's setup.
const SetupTimeout = 5 * time.Minute

// Start starts east and west with workloads and links each to the other,
// and returns once both Links are connected and synced, with a kubeconfig
// (one admin context per cluster, named after it) that reaches both API
// servers from this process's network for as long as ctx lasts.
func Start(ctx context.Context, logf func(string, ...any)) (*sandbox.Sandbox, string, error) {
	forwarding := ctx
	ctx, cancel := context.WithTimeout(ctx, SetupTimeout)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Options{Clusters: Clusters, Workloads: true, Logf: logf})
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*sandbox.Sandbox, string, error) {
		sb.Stop()
		return nil, "", err
	}
	links := map[string]*ferryv1.Link{}
	for _, pair := range [][2]string{{"west", "east"}, {"east", "west"}} {
		l, err := sb.Link(ctx, pair[0], pair[1], sandbox.LinkOptions{})
		if err != nil {
			return fail(err)
		}
		links[pair[0]] = l
	}
	for _, c := range sb.Clusters {
		if err := waitLinked(ctx, c, links[c.Name]); err != nil {
			return fail(err)
		}
		if logf != nil {
			logf("cluster %s imports from %s: Link connected and synced", c.Name, links[c.Name].Spec.ClusterName)
		}
	}
	kubeconfig, err := sb.ForwardAPIServers(forwarding)
	if err != nil {
		return fail(err)
	}
	return sb, kubeconfig, nil
}

func waitLinked(ctx context.Context, c *sandbox.Cluster, link *ferryv1.Link) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, LinkTimeout, true, func(ctx context.Context) (bool, error) {
		var l ferryv1.Link
		if err := c.API.Client.Get(ctx, client.ObjectKeyFromObject(link), &l); err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprint(l.Status.Conditions)
		return meta.IsStatusConditionTrue(l.Status.Conditions, ferryv1.LinkConnected) &&
			meta.IsStatusConditionTrue(l.Status.Conditions, ferryv1.LinkSynced), nil
	})
	if err != nil {
		return fmt.Errorf("conformance: Link %s in %s not connected and synced: %w (last: %s)", link.Name, c.Name, err, last)
	}
	return nil
}

// EnsureSuite builds bin/mcs-conformance.test when it is missing or stale
// and returns its path.
func EnsureSuite() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "hack", "build-conformance.sh"))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("conformance: building the suite failed (run hack/build-conformance.sh to see why): %w\n%s", err, out)
	}
	return filepath.Join(root, "bin", "mcs-conformance.test"), nil
}

// Result is one spec's outcome.
type Result struct {
	Name string
	// State is passed, failed, skipped or pending, as Ginkgo reports it.
	State   string
	Seconds float64
	// Failure is the suite's message for a failed spec.
	Failure string
}

// Report is one run of the suite.
type Report struct {
	Results []Result
	// Dir holds the suite's own reports (report.html, report.yaml) and its
	// JUnit file and log.
	Dir string
}

// Count returns how many specs ended in state.
func (r Report) Count(state string) int {
	n := 0
	for _, res := range r.Results {
		if res.State == state {
			n++
		}
	}
	return n
}

// RunSuite runs the suite binary against the clusters of kubeconfig,
// writing its output to out and its reports under dir. A failed spec is
// not an error: the Report says which failed. An error means the suite did
// not run to the end.
func RunSuite(ctx context.Context, suite, kubeconfig, dir string, out io.Writer) (Report, error) {
	rep := Report{Dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, fmt.Errorf("conformance: %w", err)
	}
	junit := filepath.Join(dir, "junit.xml")
	ctx, cancel := context.WithTimeout(ctx, SuiteTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite,
		"-kubeconfig="+kubeconfig,
		"-contexts="+strings.Join(Clusters, ","),
		"-ginkgo.label-filter="+LabelFilter,
		"-ginkgo.skip="+Skip,
		"-ginkgo.junit-report="+junit,
		"-ginkgo.no-color",
		"-ginkgo.v",
		"-project=Ferry", "-organization=Ferry", "-url=https://ferry.dev",
	)
	cmd.Dir = dir // the suite writes report.html and report.yaml here
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	runErr := cmd.Run()
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return rep, fmt.Errorf("conformance: running the suite: %w", runErr)
	}
	results, err := readJUnit(junit)
	if err != nil {
		if runErr != nil {
			err = fmt.Errorf("%w (the suite: %w)", err, runErr)
		}
		return rep, fmt.Errorf("conformance: no readable report: %w", err)
	}
	rep.Results = results
	if runErr != nil && rep.Count("failed") == 0 {
		return rep, fmt.Errorf("conformance: the suite failed (%w) but no spec did: see %s", runErr, dir)
	}
	return rep, nil
}

type junitSuites struct {
	Suites []struct {
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Status  string  `xml:"status,attr"`
			Time    float64 `xml:"time,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit reads the specs of Ginkgo's JUnit report; the suite-level
// nodes (BeforeSuite, the report writer) are not specs and are left out.
func readJUnit(path string) ([]Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Result
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if !strings.HasPrefix(c.Name, "[It]") {
				continue
			}
			r := Result{Name: strings.TrimSpace(strings.TrimPrefix(c.Name, "[It]")), State: c.Status, Seconds: c.Time}
			if c.Failure != nil {
				r.Failure = c.Failure.Message
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no specs", path)
	}
	return out, nil
}
