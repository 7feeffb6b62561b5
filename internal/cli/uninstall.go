package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
)

func newUninstallCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		force, keepCRDs bool
		output          *string
	)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Print the objects to delete to remove Ferry from a cluster",
		Long: `Print every object that 'ferry install' creates, in deletion order, for
kubectl delete. Nothing is deleted by this command.

It refuses while Links exist: each Link's finalizer needs the controller to
remove the mirrors and ServiceImports it owns, so deleting the controller
first would leave them behind and the Links stuck. Run 'ferry unlink' for
each Link first, or pass --force.

Deleting the CRDs deletes every Link, ServiceExport and ServiceImport in the
cluster; --keep-crds leaves them.`,
		Example: `  ferry --context east uninstall | kubectl --context east delete --ignore-not-found -f -`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			links, err := listLinks(cmd, k)
			if err != nil {
				return err
			}
			if len(links) > 0 {
				if !force {
					return fmt.Errorf("%d Link(s) exist in context %q (%s): remove them first with `ferry unlink --cluster-name NAME --wait` so their mirrors are cleaned up, or pass --force",
						len(links), k.Context, strings.Join(links, ", "))
				}
				warnf(cmd.ErrOrStderr(), "--force: %d Link(s) remain (%s); without the controller their finalizer is never removed, so they and their mirrors stay until you remove the finalizer (kubectl patch link NAME -n %s --type=merge -p '{\"metadata\":{\"finalizers\":null}}')",
					len(links), strings.Join(links, ", "), contract.SystemNamespace)
			}
			if !keepCRDs {
				if n, err := countExports(cmd, k); err != nil {
					return err
				} else if n > 0 {
					warnf(cmd.ErrOrStderr(), "deleting the ServiceExport CRD deletes the %d ServiceExport(s) in this cluster; pass --keep-crds to keep them", n)
				}
			}
			inv, err := install.Inventory()
			if err != nil {
				return err
			}
			if keepCRDs {
				inv = withoutKind(inv, "CustomResourceDefinition")
			}
			docs, err := install.Unstructured(inv)
			if err != nil {
				return err
			}
			return printManifests(cmd.OutOrStdout(), *output, docs)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "print the objects even while Links exist")
	cmd.Flags().BoolVar(&keepCRDs, "keep-crds", false, "leave the Link and MCS CRDs (and every object of those kinds)")
	output = addOutputFlag(cmd, outputYAML, append([]string{outputYAML, outputJSON}, templateFormats...)...)
	return cmd
}

// listLinks names every Link in the cluster. Without the Link CRD there are
// none.
func listLinks(cmd *cobra.Command, k *kubeTarget) ([]string, error) {
	var list ferryv1.LinkList
	err := k.Client.List(cmd.Context(), &list)
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, k.explain("list Links", err)
	}
	names := make([]string, 0, len(list.Items))
	for _, l := range list.Items {
		names = append(names, l.Namespace+"/"+l.Name)
	}
	return names, nil
}

func countExports(cmd *cobra.Command, k *kubeTarget) (int, error) {
	var list mcsv1beta1.ServiceExportList
	err := k.Client.List(cmd.Context(), &list)
	if meta.IsNoMatchError(err) {
		return 0, nil
	}
	if err != nil {
		return 0, k.explain("list ServiceExports", err)
	}
	return len(list.Items), nil
}

func withoutKind(objs []client.Object, kind string) []client.Object {
	var out []client.Object
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind != kind {
			out = append(out, o)
		}
	}
	return out
}

// warnf writes one warning line to stderr, leaving stdout to the manifests.
func warnf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "Warning: "+format+"\n", args...)
}
