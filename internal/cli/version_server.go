package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/version"

	dto "github.com/prometheus/client_model/go"
)

type serverVersion struct {
	Context    string            `json:"context"`
	Kubernetes string            `json:"kubernetes"`
	Controller *componentVersion `json:"controller,omitempty"`
	Gateway    *componentVersion `json:"gateway,omitempty"`
}

// Where a version was read.
const (
	// sourceMetrics: the pod's ferry_build_info, what the process was built
	// from.
	sourceMetrics = "metrics"
	// sourceImage: an image tag, what `ferry install` was told to run. It
	// names no commit, and may name anything (latest, a digest).
	sourceImage = "image"
)

// componentVersion is what the cluster says of one Ferry daemon.
type componentVersion struct {
	// Version and Commit are what the running pods report, the distinct
	// values joined by ", " while pods differ (mid-rollout). Without a pod
	// to read, Version is the Deployment's image tag and Commit is empty.
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// Source is sourceMetrics when at least one pod reported its build,
	// else sourceImage.
	Source string `json:"source"`
	// Builds are the running pods' distinct builds.
	Builds []componentBuild `json:"builds,omitempty"`
	Image  string           `json:"image"`
	Ready  string           `json:"ready"`
}

// componentBuild is one build that running pods of a daemon run.
type componentBuild struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion,omitempty"`
	// Source is sourceMetrics, or sourceImage for a pod that reports no
	// ferry_build_info (a daemon older than the metric): its image tag.
	Source string   `json:"source"`
	Pods   []string `json:"pods"`
}

func (b componentBuild) build() version.Build {
	return version.Build{Version: b.Version, Revision: b.Commit}
}

// serverVersions asks the cluster; any failure becomes the note, because
// the client version is still worth printing.
func serverVersions(cmd *cobra.Command, kf *genericclioptions.ConfigFlags) (*serverVersion, string) {
	k, err := kubeConnect(kf)
	if err != nil {
		return nil, "server version unknown: " + err.Error()
	}
	cfg := rest.CopyConfig(k.Config)
	cfg.Timeout = versionServerTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, "server version unknown: " + k.explain("connect", err).Error()
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return nil, "server version unknown, not reachable: " + k.explain("get the Kubernetes version", err).Error()
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "server version unknown: " + k.explain("connect", err).Error()
	}
	s := &serverVersion{Context: k.Context, Kubernetes: info.GitVersion}
	ctx, cancel := context.WithTimeout(cmd.Context(), versionServerTimeout)
	defer cancel()
	var notes []string
	for _, c := range []struct {
		name string
		port int
		into **componentVersion
	}{{contract.ControllerName, contract.ControllerAdminPort, &s.Controller}, {contract.GatewayName, contract.GatewayAdminPort, &s.Gateway}} {
		var d appsv1.Deployment
		err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: c.name}, &d)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			notes = append(notes, k.explain("get Deployment "+c.name, err).Error())
			continue
		}
		v := deploymentVersion(&d)
		// The pods, through the API server's pod proxy, as `gateways`
		// reads them: no route to the pod network needed.
		pods, err := scrapeComponent(ctx, cs, c.name, c.port)
		v.setBuilds(pods)
		switch {
		case err == nil || errors.Is(err, errNoPods):
		case v.Source == sourceImage:
			notes = append(notes, fmt.Sprintf("%s: version from the image tag, the pods' metrics unreadable: %v", c.name, err))
		default:
			notes = append(notes, fmt.Sprintf("%s: some pods' metrics unreadable: %v", c.name, err))
		}
		*c.into = v
	}
	return s, strings.Join(notes, "; ")
}

func deploymentVersion(d *appsv1.Deployment) *componentVersion {
	var image string
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		image = cs[0].Image
	}
	want := d.Status.Replicas
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return &componentVersion{Version: imageTag(image), Source: sourceImage, Image: image, Ready: fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)}
}

// setBuilds replaces the image tag with what the pods report, when any pod
// was read. A pod without ferry_build_info counts by its own image tag,
// which during a rollout differs from the Deployment's.
func (v *componentVersion) setBuilds(pods []podMetrics) {
	type key struct{ version, commit, goVersion, source string }
	byBuild := map[key][]string{}
	for _, p := range pods {
		k := key{version: imageTag(p.image), source: sourceImage}
		if m := firstMetric(p.fams[version.BuildInfoMetric]); m != nil {
			k = key{label(m, version.LabelVersion), label(m, version.LabelRevision), label(m, version.LabelGoVersion), sourceMetrics}
		}
		byBuild[k] = append(byBuild[k], p.pod)
	}
	if len(byBuild) == 0 {
		return
	}
	v.Builds, v.Source = nil, sourceImage
	var versions, commits []string
	for k, pods := range byBuild {
		slices.Sort(pods)
		v.Builds = append(v.Builds, componentBuild{Version: k.version, Commit: k.commit, GoVersion: k.goVersion, Source: k.source, Pods: pods})
		versions = append(versions, k.version)
		if k.commit != "" {
			commits = append(commits, k.commit)
		}
		if k.source == sourceMetrics {
			v.Source = sourceMetrics
		}
	}
	slices.SortFunc(v.Builds, func(a, b componentBuild) int {
		return cmp.Or(strings.Compare(a.Version, b.Version), strings.Compare(a.Commit, b.Commit),
			strings.Compare(a.GoVersion, b.GoVersion), strings.Compare(a.Source, b.Source))
	})
	slices.Sort(versions)
	slices.Sort(commits)
	v.Version = strings.Join(slices.Compact(versions), ", ")
	v.Commit = strings.Join(slices.Compact(commits), ", ")
}

// firstMetric is f's first series, or nil: ferry_build_info has one.
func firstMetric(f *dto.MetricFamily) *dto.Metric {
	if ms := f.GetMetric(); len(ms) > 0 {
		return ms[0]
	}
	return nil
}

// builds are the builds the skew is judged on: the pods', or the
// Deployment's image tag when no pod was read.
func (v *componentVersion) builds() []version.Build {
	if len(v.Builds) == 0 {
		return []version.Build{{Version: v.Version}}
	}
	out := make([]version.Build, len(v.Builds))
	for i, b := range v.Builds {
		out[i] = b.build()
	}
	return out
}

// imageTag is the tag of an image reference ("reg:5000/ferry:v1" -> "v1"),
// a short digest for a reference by digest, or "-" without either.
func imageTag(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if len(digest) > 19 {
			digest = digest[:19] + "…"
		}
		return digest
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if _, tag, ok := strings.Cut(last, ":"); ok && tag != "" {
		return tag
	}
	return "-"
}

// shortCommit cuts a revision to 12 hex digits, as git log --oneline
// would print more than enough of, keeping a "-dirty" mark.
func shortCommit(c string) string {
	rev, dirty := strings.CutSuffix(c, "-dirty")
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
