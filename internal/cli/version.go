package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/version"
)

// versionServerTimeout is short: `ferry version` must answer quickly even
// when the cluster is down, since that is when people run it.
const versionServerTimeout = 5 * time.Second

func newVersionCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		clientOnly bool
		output     *string
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and, when reachable, the server versions",
		Long: `Print this CLI's version, and when the cluster of the current context is
reachable, its Kubernetes version and the versions (image tags) of the Ferry
controller and gateway Deployments. An unreachable cluster is a note, not an
error.`,
		Example: `  ferry version
  ferry --context east version -o json
  ferry version --client`,
		Args: noArgs("version"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := versionReport{Client: version.String("ferry"), ClientVersion: version.Version, ClientCommit: version.Revision()}
			if !clientOnly {
				r.Server, r.Note = serverVersions(cmd, kf)
				r.Skew = versionSkew(r.ClientVersion, r.Server)
			}
			if r.Skew != nil && !r.Skew.Supported && *output != outputTable {
				// Scripts read stdout; the warning still reaches a person.
				fmt.Fprintln(cmd.ErrOrStderr(), "Warning: "+r.Skew.Message)
			}
			return printValue(cmd.OutOrStdout(), *output, r, func(w io.Writer) error { return printVersion(w, r) })
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only the client version; do not contact the cluster")
	output = addOutputFlag(cmd, outputTable, outputTable, outputJSON, outputYAML)
	return cmd
}

type versionReport struct {
	Client        string         `json:"client"`
	ClientVersion string         `json:"clientVersion"`
	ClientCommit  string         `json:"clientCommit"`
	Server        *serverVersion `json:"server,omitempty"`
	Skew          *skewReport    `json:"skew,omitempty"`
	Note          string         `json:"note,omitempty"`
}

// skewReport says whether the client and the daemons may work together
// (version.MaxMinorSkew). Known is false when a version names no release
// ("dev", "latest", a digest): then nothing can be said, and nothing is
// claimed.
type skewReport struct {
	Known     bool   `json:"known"`
	Supported bool   `json:"supported"`
	Message   string `json:"message"`
}

// versionSkew compares the client with each daemon, and the daemons with
// each other: a controller and gateways too far apart disagree on the feed
// and the tunnel just as a CLI would.
func versionSkew(client string, s *serverVersion) *skewReport {
	if s == nil || (s.Controller == nil && s.Gateway == nil) {
		return nil
	}
	type side struct{ name, v string }
	sides := []side{{"client", client}}
	if s.Controller != nil {
		sides = append(sides, side{"controller", s.Controller.Version})
	}
	if s.Gateway != nil {
		sides = append(sides, side{"gateway", s.Gateway.Version})
	}
	r := &skewReport{Known: true, Supported: true}
	var bad, unknown []string
	for i := range sides {
		for _, b := range sides[i+1:] {
			a := sides[i]
			ok, known := version.Skew(a.v, b.v)
			switch {
			case !known:
				unknown = append(unknown, fmt.Sprintf("%s %s / %s %s", a.name, a.v, b.name, b.v))
			case !ok:
				bad = append(bad, fmt.Sprintf("%s %s and %s %s", a.name, a.v, b.name, b.v))
			}
		}
	}
	switch {
	case len(bad) > 0:
		r.Supported = false
		r.Message = fmt.Sprintf("%s are more than %d minor version apart, which is not supported: use a ferry CLI of the daemons' version, or upgrade the daemons (`ferry install ... | kubectl apply -f -`)",
			strings.Join(bad, "; "), version.MaxMinorSkew)
	case len(unknown) > 0:
		r.Known = false
		r.Message = "skew unknown: not a release version (" + strings.Join(unknown, "; ") + ")"
	default:
		r.Message = fmt.Sprintf("within the supported skew (same major version, at most %d minor apart)", version.MaxMinorSkew)
	}
	return r
}

type serverVersion struct {
	Context    string            `json:"context"`
	Kubernetes string            `json:"kubernetes"`
	Controller *componentVersion `json:"controller,omitempty"`
	Gateway    *componentVersion `json:"gateway,omitempty"`
}

// componentVersion is what a Deployment says about a Ferry daemon: the
// version is the image tag, which `ferry install` sets to the CLI version.
type componentVersion struct {
	Version string `json:"version"`
	Image   string `json:"image"`
	Ready   string `json:"ready"`
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
	s := &serverVersion{Context: k.Context, Kubernetes: info.GitVersion}
	ctx, cancel := context.WithTimeout(cmd.Context(), versionServerTimeout)
	defer cancel()
	var notes []string
	for _, c := range []struct {
		name string
		into **componentVersion
	}{{contract.ControllerName, &s.Controller}, {contract.GatewayName, &s.Gateway}} {
		var d appsv1.Deployment
		err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: c.name}, &d)
		switch {
		case err == nil:
			*c.into = deploymentVersion(&d)
		case apierrors.IsNotFound(err):
		default:
			notes = append(notes, k.explain("get Deployment "+c.name, err).Error())
		}
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
	return &componentVersion{Version: imageTag(image), Image: image, Ready: fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want)}
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

func printVersion(w io.Writer, r versionReport) error {
	lines := [][2]string{{"Client:", r.Client}}
	if s := r.Server; s != nil {
		lines = append(lines, [2]string{"Kubernetes:", fmt.Sprintf("%s (context %q)", s.Kubernetes, s.Context)})
		for _, c := range []struct {
			label, deployment string
			v                 *componentVersion
		}{{"Controller:", contract.ControllerName, s.Controller}, {"Gateway:", contract.GatewayName, s.Gateway}} {
			text := "not installed (no Deployment " + contract.SystemNamespace + "/" + c.deployment + ")"
			if c.v != nil {
				text = fmt.Sprintf("%s (%s, %s ready)", c.v.Version, c.v.Image, c.v.Ready)
			}
			lines = append(lines, [2]string{c.label, text})
		}
	}
	if r.Skew != nil {
		label := "Skew:"
		if !r.Skew.Supported && r.Skew.Known {
			label = "Warning:"
		}
		lines = append(lines, [2]string{label, r.Skew.Message})
	}
	if r.Note != "" {
		lines = append(lines, [2]string{"Note:", r.Note})
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-12s%s\n", l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}
