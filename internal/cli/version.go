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
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/version"
)

// versionServerTimeout is short: `ferry version` must answer quickly even
// when the cluster is down, since that is when people run it.
const versionServerTimeout = 5 * time.Second

func newVersionCommand() *cobra.Command {
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
			r := versionReport{Client: version.String("ferry"), ClientVersion: version.Version}
			if !clientOnly {
				r.Server, r.Note = serverVersions(cmd)
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
	Server        *serverVersion `json:"server,omitempty"`
	Note          string         `json:"note,omitempty"`
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
func serverVersions(cmd *cobra.Command) (*serverVersion, string) {
	k, err := kubeConnect(cmd)
	if err != nil {
		return nil, "server: " + err.Error()
	}
	cfg := rest.CopyConfig(k.Config)
	cfg.Timeout = versionServerTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, "server: " + k.explain("connect", err).Error()
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return nil, "server not reachable: " + k.explain("get the Kubernetes version", err).Error()
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
