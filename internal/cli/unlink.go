package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
)

// unlinkPollInterval is how often `unlink --wait` re-counts; short enough to
// feel live, long enough to cost the API server nothing.
const unlinkPollInterval = 500 * time.Millisecond

func newUnlinkCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		cluster string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "unlink --cluster-name NAME",
		Short: "Delete the Link to a remote cluster, and with --wait follow its cleanup",
		Long: `Run against the IMPORTING cluster. Deletes the Link to cluster NAME. The
controller then removes every mirror Service, EndpointSlice and ServiceImport
the Link owns (labelled ferry.dev/link=NAME), and last the Link's finalizer.

With --wait, returns once the Link is gone, or fails after --timeout saying
what is stuck. On a terminal, a status line on stderr shows the number of
owned objects left as it falls; in a pipe nothing but the result is printed.`,
		Example: `  ferry --context west unlink --cluster-name east --wait`,
		Args:    noArgs("unlink"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" {
				return errors.New("--cluster-name is required: the remote cluster whose Link to delete (see `ferry links`)")
			}
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			link, err := findLink(ctx, k, cluster)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if link.DeletionTimestamp == nil {
				if err := k.Client.Delete(ctx, link); err != nil && !apierrors.IsNotFound(err) {
					return k.explain("delete Link "+link.Name, err)
				}
				fmt.Fprintf(out, "link %s/%s deleted\n", link.Namespace, link.Name)
			} else {
				fmt.Fprintf(out, "link %s/%s was already being deleted\n", link.Namespace, link.Name)
			}
			if !wait {
				fmt.Fprintln(out, "The controller now removes its mirrors; `ferry unlink --wait` follows that.")
				return nil
			}
			return waitUnlinked(ctx, k, link, timeout, newProgress(cmd.ErrOrStderr()), out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster-name", "", "remote cluster whose Link to delete (required)")
	f.BoolVar(&wait, "wait", false, "wait until the controller has removed everything the Link owns")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "with --wait, how long to wait")
	_ = cmd.RegisterFlagCompletionFunc("cluster-name", completeLinks(kf))
	return cmd
}

// findLink finds the Link by name, which `ferry link` makes equal to the
// cluster name, and failing that by spec.clusterName, for Links written by
// hand.
func findLink(ctx context.Context, k *kubeTarget, cluster string) (*ferryv1.Link, error) {
	var link ferryv1.Link
	err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: cluster}, &link)
	if err == nil {
		return &link, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, k.explain("get Link "+cluster, err)
	}
	var list ferryv1.LinkList
	if err := k.Client.List(ctx, &list, client.InNamespace(contract.SystemNamespace)); err != nil {
		return nil, k.explain("list Links", err)
	}
	var have []string
	for i := range list.Items {
		if list.Items[i].Spec.ClusterName == cluster {
			return &list.Items[i], nil
		}
		have = append(have, list.Items[i].Spec.ClusterName)
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("no Link to cluster %q in context %q: it has no Links at all; is this the importing cluster? (--context)", cluster, k.Context)
	}
	slices.Sort(have)
	return nil, fmt.Errorf("no Link to cluster %q in context %q: it links to %s; check --cluster-name or --context", cluster, k.Context, strings.Join(have, ", "))
}

// waitUnlinked polls until the Link is gone, showing on p what is left.
func waitUnlinked(ctx context.Context, k *kubeTarget, link *ferryv1.Link, timeout time.Duration, p *progress, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer p.Clear() // before main prints an error
	name := link.Name
	var lastOwned []ownedObject
	for {
		var cur ferryv1.Link
		err := k.Client.Get(ctx, types.NamespacedName{Namespace: link.Namespace, Name: name}, &cur)
		gone := apierrors.IsNotFound(err)
		if err != nil && !gone && ctx.Err() == nil {
			return k.explain("get Link "+name, err)
		}
		owned, cerr := ownedObjects(ctx, k, name)
		if cerr != nil && ctx.Err() == nil {
			return cerr
		}
		if cerr != nil {
			owned = lastOwned // the deadline cut this count short: report the last one
		}
		lastOwned = owned
		if gone && cerr == nil {
			if len(owned) > 0 {
				return fmt.Errorf("link %s is gone but %d objects it owned remain (%s): its finalizer was removed before cleanup; delete them with `kubectl delete svc,endpointslices,serviceimports -A -l %s=%s,%s`",
					name, len(owned), summarizeKinds(owned), contract.LabelLink, name, contract.LabelSourceCluster)
			}
			p.Clear()
			fmt.Fprintf(out, "link %s removed, and everything it owned\n", name)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("timed out after %s: link %s/%s still exists with %s (%s): is the controller running? (`ferry check`; `kubectl -n %s logs deploy/%s`); to abandon cleanup: `kubectl -n %s patch link %s --type=merge -p '{\"metadata\":{\"finalizers\":null}}'`",
				timeout, link.Namespace, name, plural(len(owned), "owned object"), summarizeKinds(owned), contract.SystemNamespace, contract.ControllerName, contract.SystemNamespace, name)
		}
		msg := fmt.Sprintf("waiting for %s to be removed (%s)", plural(len(owned), "mirror object"), summarizeKinds(owned))
		if len(owned) == 0 {
			msg = fmt.Sprintf("waiting for the controller to remove finalizer %s from link %s", ferryv1.Finalizer, name)
		}
		p.Update(msg)
		select {
		case <-ctx.Done():
		case <-time.After(unlinkPollInterval):
		}
	}
}

// ownedObject is an object Ferry wrote for a Link, read as metadata only.
type ownedObject struct {
	Kind, Namespace, Name, Link string
}

// ferryKinds are the kinds the importer writes with the ferry.dev/link label.
var ferryKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ServiceList"},
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSliceList"},
	{Group: "multicluster.x-k8s.io", Version: "v1beta1", Kind: "ServiceImportList"},
}

// ownedObjects lists, in all namespaces, the objects labelled as owned by
// link; "" lists those of every Link. Ferry owns only objects with both
// ownership labels, so an object with the link label alone is not counted
// (and never suggested for deletion). Metadata only: the count is all that
// matters and full objects would be large.
func ownedObjects(ctx context.Context, k *kubeTarget, link string) ([]ownedObject, error) {
	opts := []client.ListOption{client.HasLabels{contract.LabelLink, contract.LabelSourceCluster}}
	if link != "" {
		opts = []client.ListOption{client.MatchingLabels{contract.LabelLink: link}, client.HasLabels{contract.LabelSourceCluster}}
	}
	var out []ownedObject
	for _, gvk := range ferryKinds {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(gvk)
		err := k.Client.List(ctx, &list, opts...)
		if meta.IsNoMatchError(err) {
			continue // no ServiceImport CRD: nothing of that kind to own
		}
		if err != nil {
			return nil, k.explain("list "+strings.TrimSuffix(gvk.Kind, "List")+"s", err)
		}
		for _, o := range list.Items {
			out = append(out, ownedObject{Kind: strings.TrimSuffix(gvk.Kind, "List"), Namespace: o.Namespace, Name: o.Name, Link: o.Labels[contract.LabelLink]})
		}
	}
	return out, nil
}

// summarizeKinds says "1 Service, 2 EndpointSlices" in ferryKinds order.
func summarizeKinds(objs []ownedObject) string {
	if len(objs) == 0 {
		return "none"
	}
	n := map[string]int{}
	for _, o := range objs {
		n[o.Kind]++
	}
	var parts []string
	for _, gvk := range ferryKinds {
		kind := strings.TrimSuffix(gvk.Kind, "List")
		if c := n[kind]; c > 0 {
			parts = append(parts, plural(c, kind))
		}
	}
	return strings.Join(parts, ", ")
}

// plural says "1 Service" or "2 Services".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// completeLinks offers the cluster names of the Links in the current
// context, for --cluster-name completion.
func completeLinks(kf *genericclioptions.ConfigFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		k, err := kubeConnect(kf)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var list ferryv1.LinkList
		if err := k.Client.List(cmd.Context(), &list, client.InNamespace(contract.SystemNamespace)); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, l := range list.Items {
			out = append(out, l.Spec.ClusterName)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
