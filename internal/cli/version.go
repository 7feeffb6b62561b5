package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

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
reachable, its Kubernetes version and the version and commit that the Ferry
controller and gateway pods run (their ferry_build_info metric, read through
the API server's pod proxy; the Deployment's image tag when no pod can be
read), with the skew between all of them. An unreachable cluster is a note,
not an error.`,
		Example: `  ferry version
  ferry --context east version -o json
  ferry version --client`,
		Args: noArgs("version"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := versionReport{Client: version.String("ferry"), ClientVersion: version.Version, ClientCommit: version.Revision()}
			if !clientOnly {
				r.Server, r.Note = serverVersions(cmd, kf)
				r.Skew = versionSkew(version.Build{Version: r.ClientVersion, Revision: r.ClientCommit}, r.Server)
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
// (version.MaxMinorSkew). Known is false when two builds are neither of
// one commit nor both releases ("dev", "latest", a digest, two bare
// commits): then nothing can be said, and nothing is claimed.
type skewReport struct {
	Known     bool   `json:"known"`
	Supported bool   `json:"supported"`
	Message   string `json:"message"`
}

// versionSkew compares the client with each daemon, and the daemons with
// each other (every build the pods run, mid-rollout too): a controller and
// gateways too far apart disagree on the feed and the tunnel just as a CLI
// would.
func versionSkew(client version.Build, s *serverVersion) *skewReport {
	if s == nil || (s.Controller == nil && s.Gateway == nil) {
		return nil
	}
	type side struct {
		name string
		b    version.Build
	}
	sides := []side{{"client", client}}
	for _, c := range []struct {
		name string
		v    *componentVersion
	}{{"controller", s.Controller}, {"gateway", s.Gateway}} {
		if c.v == nil {
			continue
		}
		for _, b := range c.v.builds() {
			sides = append(sides, side{c.name, b})
		}
	}
	r := &skewReport{Known: true, Supported: true}
	var bad, unknown []string
	commit, oneCommit := "", true
	for i := range sides {
		for _, b := range sides[i+1:] {
			a := sides[i]
			c, same := version.SameCommit(a.b, b.b)
			oneCommit = oneCommit && same
			if same {
				commit = c
			}
			ok, known := version.SkewOf(a.b, b.b)
			switch {
			case !known:
				unknown = append(unknown, fmt.Sprintf("%s %s / %s %s", a.name, describeBuild(a.b), b.name, describeBuild(b.b)))
			case !ok:
				bad = append(bad, fmt.Sprintf("%s %s and %s %s", a.name, a.b.Version, b.name, b.b.Version))
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
		r.Message = "skew unknown: not both releases, nor one commit (" + strings.Join(unknown, "; ") + ")"
	case oneCommit:
		r.Message = "no skew: one commit everywhere (" + shortCommit(commit) + ")"
	default:
		r.Message = fmt.Sprintf("within the supported skew (same major version, at most %d minor apart)", version.MaxMinorSkew)
	}
	return r
}

// describeBuild is a version, with its commit when the version is no
// release and so says little by itself: "dev@3098bdb2c0f1".
func describeBuild(b version.Build) string {
	if _, release := version.ParseRelease(b.Version); release || b.Revision == "" || b.Revision == "unknown" {
		return b.Version
	}
	return b.Version + "@" + shortCommit(b.Revision)
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
				text = c.v.describe()
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

// describe is a daemon's line: its build with the Deployment's image and
// readiness, "v0.3.0 (commit 3098bdb2c0f1, reg/ferry-gateway:v0.3.0, 2/2
// ready)"; while pods run different builds, each with its pod count.
func (v *componentVersion) describe() string {
	deployment := v.Image + ", " + v.Ready + " ready"
	switch len(v.Builds) {
	case 0:
		return fmt.Sprintf("%s (%s)", v.Version, deployment)
	case 1:
		if c := v.Builds[0].Commit; c != "" {
			return fmt.Sprintf("%s (commit %s, %s)", v.Version, shortCommit(c), deployment)
		}
		return fmt.Sprintf("%s (%s)", v.Version, deployment)
	}
	parts := make([]string, len(v.Builds))
	for i, b := range v.Builds {
		commit := ""
		if b.Commit != "" {
			commit = " (commit " + shortCommit(b.Commit) + ")"
		}
		pods := "pods"
		if len(b.Pods) == 1 {
			pods = "pod"
		}
		parts[i] = fmt.Sprintf("%s%s on %d %s", b.Version, commit, len(b.Pods), pods)
	}
	return fmt.Sprintf("%d builds: %s (%s)", len(v.Builds), strings.Join(parts, ", "), deployment)
}
