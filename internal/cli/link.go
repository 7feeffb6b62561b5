package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
	"ferry.dev/ferry/internal/linkgen"
)

func newLinkCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		o      linkgen.Options
		output *string
	)
	cmd := &cobra.Command{
		Use:   "link --cluster-name NAME",
		Short: "Print the Link another cluster applies to import this cluster's exports",
		Long: `Run against the EXPORTING cluster. Reads its gateway Service (where other
clusters reach it) and prints a Link for the IMPORTING cluster to apply.

The Link holds only the gateway's address(es) and SPIFFE identity: never an
API server address or a credential. The importer reaches this cluster through
its gateway alone.

The gateway address comes from the LoadBalancer status of the
ferry-system/ferry-gateway Service; with a NodePort or ClusterIP gateway, or to
use a DNS name, pass --gateway-address (a bare host gets port 4143).`,
		Example: `  ferry --context east link --cluster-name east | kubectl --context west apply -f -
  ferry --context east link --cluster-name east --gateway-address gw.east.example.com
  ferry --context east link --cluster-name east --gateway-address 198.18.0.10:30443 -o json
  ferry --context east link --cluster-name east -o jsonpath='{.spec.gatewayAddresses}'`,
		Args: noArgs("link"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ClusterName == "" {
				return errors.New("--cluster-name is required: the name of THIS (exporting) cluster, as given to `ferry install`, e.g. `ferry --context east link --cluster-name east`")
			}
			if err := contract.ValidateClusterName(o.ClusterName); err != nil {
				return fmt.Errorf("--cluster-name: %w", err)
			}
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			link, err := generateLink(cmd.Context(), k, o)
			if err != nil {
				return err
			}
			docs, err := install.Unstructured([]client.Object{link})
			if err != nil {
				return err
			}
			dropEmptyObjects(docs[0])
			if *output == outputYAML {
				return printManifests(cmd.OutOrStdout(), *output, docs)
			}
			// One object, not a List, for json and the templates: `kubectl
			// apply -f -` takes either, and a bare Link is what a person
			// would write.
			return printout{
				value: docs[0],
				names: []runtime.Object{objectRef(ferryv1.GroupVersion.WithKind("Link"), link.Namespace, link.Name)},
			}.print(cmd.OutOrStdout(), *output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ClusterName, "cluster-name", "", "name of this (exporting) cluster, as given to `ferry install` (required)")
	f.StringSliceVar(&o.GatewayAddresses, "gateway-address", nil, "HOST[:PORT] where other clusters reach this gateway; repeat or comma-separate (default: the gateway Service's load-balancer address)")
	f.StringVar(&o.MeshDomain, "mesh-domain", "", "mesh domain (default: the controller's --mesh-domain, else "+contract.DefaultMeshDomain+")")
	output = addOutputFlag(cmd, outputYAML, append([]string{outputYAML, outputJSON, outputName}, templateFormats...)...)
	return cmd
}

// generateLink checks that the context really is the cluster named by
// --cluster-name before building the Link: a Link pointing at the wrong
// gateway would only fail later, in the other cluster, with a TLS error.
func generateLink(ctx context.Context, k *kubeTarget, o linkgen.Options) (*ferryv1.Link, error) {
	args := controllerArgs(ctx, k)
	if c := args["cluster-name"]; c != "" && c != o.ClusterName {
		return nil, fmt.Errorf("context %q is Ferry cluster %q, not %q: run `ferry link` against %s itself (--context), or pass --cluster-name %s",
			k.Context, c, o.ClusterName, o.ClusterName, c)
	}
	if o.MeshDomain == "" {
		o.MeshDomain = args["mesh-domain"]
	}
	// A Link to this very cluster means the context is an importer of it:
	// the user pointed `link` at the wrong side.
	var links ferryv1.LinkList
	if err := k.Client.List(ctx, &links, client.InNamespace(contract.SystemNamespace)); err == nil {
		for _, l := range links.Items {
			if l.Spec.ClusterName == o.ClusterName {
				return nil, fmt.Errorf("context %q already imports from %q (Link %s/%s exists), so it is not %s: run `ferry link` against the exporting cluster, e.g. `ferry --context %s link --cluster-name %s`",
					k.Context, o.ClusterName, l.Namespace, l.Name, o.ClusterName, o.ClusterName, o.ClusterName)
			}
		}
	} else if !meta.IsNoMatchError(err) && !apierrors.IsForbidden(err) {
		return nil, k.explain("list Links", err)
	}
	link, err := linkgen.Generate(ctx, k.Client, o)
	if err != nil {
		return nil, k.explainLinkgen(err)
	}
	return link, nil
}

// explainLinkgen keeps linkgen's own one-line advice as it is and gives API
// failures (unreachable, forbidden) the context-naming form.
func (k *kubeTarget) explainLinkgen(err error) error {
	var status apierrors.APIStatus
	var netErr net.Error
	if errors.As(err, &status) || errors.As(err, &netErr) {
		return k.explain("read the gateway Service", err)
	}
	return err
}

// controllerArgs reads the --flag=value arguments of the ferry-controller
// Deployment, which say what cluster and mesh this install is. Ferry may run
// outside Deployments (tests, the sandbox) or the user may not read them, so
// a missing or unreadable Deployment yields an empty map.
func controllerArgs(ctx context.Context, k *kubeTarget) map[string]string {
	var d appsv1.Deployment
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.ControllerName}, &d); err != nil {
		return map[string]string{}
	}
	return deploymentArgs(&d)
}

// deploymentArgs collects "--name=value" and "--name value" arguments of
// every container.
func deploymentArgs(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		args := append(append([]string{}, c.Command...), c.Args...)
		for i, a := range args {
			name, ok := strings.CutPrefix(a, "--")
			if !ok {
				continue
			}
			if n, v, ok := strings.Cut(name, "="); ok {
				out[n] = v
			} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				out[name] = args[i+1]
			}
		}
	}
	return out
}

// dropEmptyObjects removes fields whose value is an empty object, such as
// "probe: {}" (a struct field that omitempty cannot drop): the printed Link
// should read like one a person wrote, with only what is set.
func dropEmptyObjects(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			dropEmptyObjects(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}

// noArgs refuses positional arguments with a line that names the command,
// instead of cobra's "unknown command" for a stray word.
func noArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("`ferry %s` takes no arguments, got %q: use flags (see `ferry %s --help`)", name, strings.Join(args, " "), name)
		}
		return nil
	}
}
