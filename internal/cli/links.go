package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
)

// maxTableMessage keeps a table row on one terminal line; -o json/yaml
// carry the whole message.
const maxTableMessage = 72

func newLinksCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "links",
		Short: "Show this cluster's Links: remote gateway, connection, health, imports",
		Long: `List the Links of this (importing) cluster with what the controller reports in
their status: whether the feed is connected, whether the remote gateway
answers probes, how many exports are imported, when the feed last delivered
a change, and what to do about any problem.

LAST SYNC is the age of the last change the feed delivered. While CONNECTED
is True the imported data is current however old that is: heartbeats keep the
stream alive without writing status.`,
		Example: `  ferry --context west links
  ferry --context west links -o wide
  ferry --context west links -o json
  ferry --context west links -o jsonpath='{range [*]}{.name}{"\t"}{.connected}{"\n"}{end}'`,
		Args: noArgs("links"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			links, err := getLinks(cmd.Context(), k)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]linkSummary, 0, len(links))
			for i := range links {
				rows = append(rows, summarizeLink(&links[i], now))
			}
			if len(rows) == 0 && (*output == outputTable || *output == outputWide) {
				fmt.Fprintf(cmd.ErrOrStderr(), "No Links in context %q. To import from cluster REMOTE: ferry --context REMOTE link --cluster-name REMOTE | kubectl --context %s apply -f -\n", k.Context, k.Context)
				return nil
			}
			names := make([]runtime.Object, 0, len(rows))
			for _, r := range rows {
				names = append(names, objectRef(ferryv1.GroupVersion.WithKind("Link"), contract.SystemNamespace, r.Name))
			}
			return printout{
				value: rows,
				table: func(w io.Writer) error { return printLinksTable(w, rows, false) },
				wide:  func(w io.Writer) error { return printLinksTable(w, rows, true) },
				names: names,
			}.print(cmd.OutOrStdout(), *output)
		},
	}
	output = addOutputFlag(cmd, outputTable, append([]string{outputTable, outputWide, outputName}, structuredFormats...)...)
	return cmd
}

// linkSummary is one Link as `ferry links -o json|yaml` prints it: the
// fields a script needs, not the whole object (kubectl get links has that).
type linkSummary struct {
	Name             string       `json:"name"`
	Cluster          string       `json:"cluster"`
	GatewayAddresses []string     `json:"gatewayAddresses"`
	GatewayIdentity  string       `json:"gatewayIdentity"`
	Connected        string       `json:"connected"`
	Synced           string       `json:"synced"`
	GatewayHealthy   string       `json:"gatewayHealthy"`
	ImportedServices int32        `json:"importedServices"`
	LastSyncTime     *metav1.Time `json:"lastSyncTime,omitempty"`
	LastSyncAge      string       `json:"lastSyncAge"`
	// FeedVersion is the version of the remote's feed that the mirrors
	// reflect (status.lastSyncVersion); it grows with every change.
	FeedVersion int64  `json:"feedVersion,omitempty"`
	Deleting    bool   `json:"deleting,omitempty"`
	Message     string `json:"message,omitempty"`
}

func summarizeLink(l *ferryv1.Link, now time.Time) linkSummary {
	return linkSummary{
		Name:             l.Name,
		Cluster:          l.Spec.ClusterName,
		GatewayAddresses: l.Spec.GatewayAddresses,
		GatewayIdentity:  l.Spec.GatewayIdentity,
		Connected:        conditionStatus(l, ferryv1.LinkConnected),
		Synced:           conditionStatus(l, ferryv1.LinkSynced),
		GatewayHealthy:   conditionStatus(l, ferryv1.LinkGatewayHealthy),
		ImportedServices: l.Status.ImportedServices,
		LastSyncTime:     l.Status.LastSyncTime,
		LastSyncAge:      age(l.Status.LastSyncTime, now),
		FeedVersion:      l.Status.LastSyncVersion,
		Deleting:         l.DeletionTimestamp != nil,
		Message:          linkMessage(l),
	}
}

// printLinksTable writes the links table; wide adds what a row cannot hold
// on one terminal line: the Synced condition, the exact sync time, the feed
// version, every gateway address, the identity, and the whole message.
func printLinksTable(w io.Writer, rows []linkSummary, wide bool) error {
	header := []string{"name", "cluster", "gateway", "connected", "healthy", "imports", "last sync", "message"}
	if wide {
		header = []string{"name", "cluster", "gateway", "connected", "healthy", "imports", "last sync",
			"synced", "last sync time", "feed version", "gateways", "identity", "message"}
	}
	var cells [][]string
	for _, r := range rows {
		row := []string{r.Name, r.Cluster, firstAddress(r.GatewayAddresses), r.Connected, r.GatewayHealthy,
			fmt.Sprint(r.ImportedServices), r.LastSyncAge}
		if !wide {
			cells = append(cells, append(row, clipMessage(r.Message)))
			continue
		}
		syncTime, version, addrs := "-", "-", strings.Join(r.GatewayAddresses, ",")
		if r.LastSyncTime != nil && !r.LastSyncTime.IsZero() {
			syncTime = r.LastSyncTime.UTC().Format(time.RFC3339)
		}
		if r.FeedVersion != 0 {
			version = fmt.Sprint(r.FeedVersion)
		}
		cells = append(cells, append(row, r.Synced, syncTime, version, orDash(addrs), orDash(r.GatewayIdentity), oneLineMessage(r.Message)))
	}
	return printTable(w, header, cells)
}

// getLinks reads the Links in ferry-system, sorted by name. Links elsewhere
// are ignored by the controller (docs/rbac.md), so they are not shown.
func getLinks(ctx context.Context, k *kubeTarget) ([]ferryv1.Link, error) {
	var list ferryv1.LinkList
	if err := k.Client.List(ctx, &list, client.InNamespace(contract.SystemNamespace)); err != nil {
		return nil, k.explain("list Links", err)
	}
	slices.SortFunc(list.Items, func(a, b ferryv1.Link) int { return strings.Compare(a.Name, b.Name) })
	return list.Items, nil
}

// conditionStatus is True, False or Unknown; a condition the controller has
// not written yet counts as Unknown.
func conditionStatus(l *ferryv1.Link, typ string) string {
	if c := meta.FindStatusCondition(l.Status.Conditions, typ); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}

// linkMessage is what a person should read first about a Link: the
// controller's own message, else the message of the first condition that
// is not True, else why there is no status at all.
func linkMessage(l *ferryv1.Link) string {
	if l.DeletionTimestamp != nil {
		return "deleting: waiting for the controller to remove its mirrors and finalizer"
	}
	if l.Status.Message != "" {
		return l.Status.Message
	}
	if len(l.Status.Conditions) == 0 {
		return "no status yet: is the controller running? (ferry check)"
	}
	for _, typ := range []string{ferryv1.LinkConnected, ferryv1.LinkSynced, ferryv1.LinkGatewayHealthy} {
		if c := meta.FindStatusCondition(l.Status.Conditions, typ); c != nil && c.Status != metav1.ConditionTrue && c.Message != "" {
			return c.Message
		}
	}
	return ""
}

// age is a kubectl-style age ("5m", "3h2m"), or "-" when t is unset.
func age(t *metav1.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := now.Sub(t.Time)
	if d < 0 {
		d = 0 // the cluster's clock is ahead of ours
	}
	return duration.HumanDuration(d)
}

func firstAddress(addrs []string) string {
	switch len(addrs) {
	case 0:
		return "-"
	case 1:
		return addrs[0]
	}
	return fmt.Sprintf("%s (+%d)", addrs[0], len(addrs)-1)
}

// clipMessage puts a message on one table line: whitespace runs become one
// space (a tab would break the columns) and long messages end in "…".
func clipMessage(s string) string {
	s = oneLineMessage(s)
	if r := []rune(s); len(r) > maxTableMessage {
		return string(r[:maxTableMessage-1]) + "…"
	}
	return s
}

// oneLineMessage is a message for a table cell, whole: whitespace runs
// become one space, and an empty one is "-".
func oneLineMessage(s string) string {
	return orDash(strings.Join(strings.Fields(s), " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
