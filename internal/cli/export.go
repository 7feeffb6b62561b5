package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exportwatch"
)

func newExportCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		to     []string
		all    bool
		output *string
	)
	cmd := &cobra.Command{
		Use:   "export svc/NAME [--to CLUSTER,...]",
		Short: "Offer a Service to linked clusters (create its ServiceExport)",
		Long: `Create or update the MCS ServiceExport of Service NAME in the namespace of -n
(or the context's). Linked clusters then import it as NAME-<this cluster> and
NAME.<namespace>.svc.clusterset.local.

--to limits which clusters may import it (the ferry.dev/allowed-clusters
annotation); the gateway refuses every other cluster. Without --to a new
export is open to every linked cluster, and an existing export keeps its
list: widening access takes --all-clusters, so it never happens by accident.
Running export again with the same flags changes nothing.

It prints what it did, as kubectl apply does; -o name prints only the
ServiceExport's name, and -o json|yaml the ServiceExport as written.`,
		Example: `  ferry --context east export svc/foo -n shop
  ferry --context east export foo -n shop --to west,north
  ferry --context east export svc/foo -n shop --all-clusters
  ferry --context east export svc/foo -n shop -o name`,
		Args:              serviceArg("export"),
		ValidArgsFunction: completeServices(kf),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, _ := parseServiceArg(args[0])
			var allowed []string
			if cmd.Flags().Changed("to") {
				var err error
				if allowed, err = allowedClusters(to); err != nil {
					return err
				}
			}
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			msg, se, err := export(cmd.Context(), k, name, allowed, all)
			if err != nil {
				return err
			}
			se.SetGroupVersionKind(serviceExportGVK)
			se.ManagedFields = nil // as kubectl without --show-managed-fields
			return printout{
				value: se,
				table: func(w io.Writer) error { _, err := fmt.Fprintln(w, msg); return err },
				names: []runtime.Object{se},
			}.print(cmd.OutOrStdout(), *output)
		},
	}
	cmd.Flags().StringSliceVar(&to, "to", nil, "clusters that may import the Service, comma-separated (default: every linked cluster)")
	cmd.Flags().BoolVar(&all, "all-clusters", false, "let every linked cluster import it, removing an earlier --to")
	cmd.MarkFlagsMutuallyExclusive("to", "all-clusters")
	output = addOutputFlag(cmd, "", append([]string{outputName}, structuredFormats...)...)
	return cmd
}

func newUnexportCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		ignoreNotFound bool
		output         *string
	)
	cmd := &cobra.Command{
		Use:   "unexport svc/NAME",
		Short: "Stop offering a Service to linked clusters (delete its ServiceExport)",
		Long: `Delete the ServiceExport of Service NAME in the namespace of -n (or the
context's). Importers remove their mirrors when their feed delivers the
change. The Service itself is not touched.

-o name prints only the deleted ServiceExport's name, as kubectl delete does
(and nothing with --ignore-not-found when there was none).`,
		Example:           `  ferry --context east unexport svc/foo -n shop`,
		Args:              serviceArg("unexport"),
		ValidArgsFunction: completeServices(kf),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, _ := parseServiceArg(args[0])
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			se := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: name}}
			err = k.Client.Delete(cmd.Context(), se)
			switch {
			case apierrors.IsNotFound(err) && ignoreNotFound:
				if *output == "" {
					fmt.Fprintf(cmd.OutOrStdout(), "serviceexport %s/%s was not exported\n", k.Namespace, name)
				}
				return nil
			case apierrors.IsNotFound(err):
				return fmt.Errorf("service %s/%s is not exported in context %q: nothing to unexport (check -n; `kubectl get serviceexports -A` lists exports)", k.Namespace, name, k.Context)
			case err != nil:
				return k.explain("delete ServiceExport "+k.Namespace+"/"+name, err)
			}
			return printout{
				table: func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "serviceexport %s/%s deleted\n", k.Namespace, name)
					return err
				},
				names: []runtime.Object{objectRef(serviceExportGVK, k.Namespace, name)},
			}.print(cmd.OutOrStdout(), *output)
		},
	}
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "succeed if the Service is not exported")
	output = addOutputFlag(cmd, "", outputName)
	return cmd
}

// serviceExportGVK is the MCS ServiceExport kind; mcs-api's GroupVersion
// is a metav1 one, without WithKind.
var serviceExportGVK = schema.GroupVersionKind{
	Group: mcsv1beta1.GroupVersion.Group, Version: mcsv1beta1.GroupVersion.Version, Kind: mcsv1beta1.ServiceExportKindName,
}

// serviceArg accepts exactly one Service reference, with a usage line that
// shows the form rather than cobra's "accepts 1 arg(s)".
func serviceArg(verb string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("name one Service: `ferry %s svc/NAME [-n NAMESPACE]`", verb)
		}
		_, err := parseServiceArg(args[0])
		return err
	}
}

// parseServiceArg takes "svc/NAME", "service/NAME", "services/NAME" or
// "NAME", as kubectl does.
func parseServiceArg(s string) (string, error) {
	name := s
	if kind, n, ok := strings.Cut(s, "/"); ok {
		switch strings.ToLower(kind) {
		case "svc", "service", "services":
			name = n
		default:
			return "", fmt.Errorf("%q: only Services can be exported; use svc/NAME or NAME", s)
		}
	}
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return "", fmt.Errorf("%q is not a Service name: %s", name, strings.Join(errs, "; "))
	}
	return name, nil
}

// allowedClusters validates --to and returns the names sorted and without
// repeats, so the same set always writes the same annotation.
func allowedClusters(to []string) ([]string, error) {
	var out []string
	for _, c := range to {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if err := contract.ValidateClusterName(c); err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("--to needs at least one cluster name; to let every linked cluster import, use --all-clusters")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// export creates or updates the ServiceExport and says what it did, as
// kubectl does: created, configured or unchanged. allowed nil keeps the
// current list; all removes it.
func export(ctx context.Context, k *kubeTarget, name string, allowed []string, all bool) (string, *mcsv1beta1.ServiceExport, error) {
	ns := k.Namespace
	var svc corev1.Service
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &svc); apierrors.IsNotFound(err) {
		return "", nil, fmt.Errorf("no Service %q in namespace %q of context %q: create the Service first, or pass -n NAMESPACE (`kubectl get svc -A --field-selector metadata.name=%s`)", name, ns, k.Context, name)
	} else if err != nil {
		return "", nil, k.explain("get Service "+ns+"/"+name, err)
	}
	// Refused before anything is written: a user reads the command's
	// answer, not a condition on an object they may never look at.
	if r := exportwatch.Exportable(&svc); r != nil {
		msg := fmt.Sprintf("service %s/%s %s", ns, name, r.Problem)
		if r.Hint != "" {
			msg += ": " + r.Hint
		}
		return "", nil, errors.New(msg)
	}
	want := strings.Join(allowed, ",")
	to := func(v string) string {
		if v == "" {
			return "every linked cluster"
		}
		return v
	}
	var (
		msg string
		se  mcsv1beta1.ServiceExport
	)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		se = mcsv1beta1.ServiceExport{}
		err := k.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &se)
		if apierrors.IsNotFound(err) {
			se = mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			if want != "" {
				se.Annotations = map[string]string{contract.AnnotationAllowedClusters: want}
			}
			msg = fmt.Sprintf("serviceexport %s/%s created (to %s)", ns, name, to(want))
			return k.Client.Create(ctx, &se)
		}
		if err != nil {
			return err
		}
		cur := se.Annotations[contract.AnnotationAllowedClusters]
		next := cur
		switch {
		case all:
			next = ""
		case allowed != nil:
			next = want
		}
		if next == cur {
			msg = fmt.Sprintf("serviceexport %s/%s unchanged (to %s)", ns, name, to(cur))
			return nil
		}
		if next == "" {
			delete(se.Annotations, contract.AnnotationAllowedClusters)
		} else {
			if se.Annotations == nil {
				se.Annotations = map[string]string{}
			}
			se.Annotations[contract.AnnotationAllowedClusters] = next
		}
		msg = fmt.Sprintf("serviceexport %s/%s configured (to %s, was %s)", ns, name, to(next), to(cur))
		return k.Client.Update(ctx, &se)
	})
	if err != nil {
		return "", nil, k.explain("write ServiceExport "+ns+"/"+name, err)
	}
	return msg, &se, nil
}

// completeServices offers the Services of the namespace, without mirrors
// (they cannot be exported).
func completeServices(kf *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		k, err := kubeConnect(kf)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var list corev1.ServiceList
		if err := k.Client.List(cmd.Context(), &list, client.InNamespace(k.Namespace)); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, s := range list.Items {
			if s.Labels[contract.LabelLink] == "" {
				out = append(out, "svc/"+s.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
