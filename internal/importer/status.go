package importer

import (
	"context"
	"fmt"
	"strings"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/mirror"
)

// Status limits: a status is read by people and by `ferry check`, and
// must stay small however many exports have problems.
const (
	maxMessageLength = 1024
	maxListed        = 3
)

// writeStatus writes the Link's status if, and only if, it changed.
func (im *Importer) writeStatus(ctx context.Context, link *ferryv1.Link, out outcome) error {
	want := desiredStatus(link, out, im.opts.Clock.Now())
	if apiequality.Semantic.DeepEqual(link.Status, want) {
		return nil
	}
	patched := link.DeepCopy()
	patched.Status = want
	if err := im.c.Status().Patch(ctx, patched, client.MergeFrom(link)); err != nil {
		return fmt.Errorf("write status of link %s: %w", link.Name, err)
	}
	im.metrics.writes.WithLabelValues("Link", "patch", "status").Inc()
	return nil
}

// desiredStatus computes a Link's status from what this reconcile learned.
//
// Whatever this process does not know yet (the stream's outcome before the
// first connect attempt ends, the health before the first probe, the
// mirrors' state before the first snapshot) keeps what an earlier process
// wrote, so a controller restart with nothing changed writes nothing.
//
// lastSyncTime is written only together with a change that is written
// anyway: a new feed version, or a Connected transition (at a disconnect it
// becomes the time of the last message received). Heartbeats alone never
// write it, so an idle link costs no writes; while Connected is True the
// data is current, and ferry_importer_last_sync_age_seconds has the exact age.
func desiredStatus(l *ferryv1.Link, o outcome, now time.Time) ferryv1.LinkStatus {
	old := l.Status
	st := *old.DeepCopy()
	st.ObservedGeneration = l.Generation
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: clip(msg), ObservedGeneration: l.Generation,
			LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
		})
	}
	keep := func(typ, reason, msg string) {
		if meta.FindStatusCondition(st.Conditions, typ) == nil {
			set(typ, metav1.ConditionUnknown, reason, msg)
		}
	}
	cluster := l.Spec.ClusterName

	switch {
	case o.idErr != nil:
		set(ferryv1.LinkConnected, metav1.ConditionFalse, "InvalidIdentity", o.idErr.Error())
	case !o.feed.Reported:
		keep(ferryv1.LinkConnected, "Connecting", "opening the feed")
	case o.feed.Connected:
		set(ferryv1.LinkConnected, metav1.ConditionTrue, "Connected", "receiving "+cluster+"'s exports")
	default:
		set(ferryv1.LinkConnected, metav1.ConditionFalse, "Disconnected", o.feed.ConnErr)
	}

	switch {
	case !o.hasFeed || !o.health.Probed:
		keep(ferryv1.LinkGatewayHealthy, "Probing", "no probe result yet")
	case o.health.NeverAnswered && o.health.Level != mirror.Stale:
		set(ferryv1.LinkGatewayHealthy, metav1.ConditionUnknown, "NotYetAnswered",
			"the remote gateway has not answered a probe yet; its mirrors are not ready: "+o.health.DownError)
	case o.health.Level == mirror.Healthy:
		set(ferryv1.LinkGatewayHealthy, metav1.ConditionTrue, "ProbeSucceeded", "the remote gateway answers probes through the data path")
	case o.health.Level == mirror.Unhealthy:
		set(ferryv1.LinkGatewayHealthy, metav1.ConditionFalse, "ProbeFailed", "probes fail: "+o.health.DownError)
	default:
		set(ferryv1.LinkGatewayHealthy, metav1.ConditionFalse, "StalenessLimitExceeded", "unreachable for longer than spec.stalenessLimit: "+o.health.DownError)
	}

	synced := o.computed && o.feed.Synced
	problems := summarize(o.state.Problems, l.Spec.ClusterName)
	switch {
	case o.policyErr != nil:
		set(ferryv1.LinkSynced, metav1.ConditionFalse, "InvalidSpec", o.policyErr.Error())
	case !synced:
		keep(ferryv1.LinkSynced, "WaitingForSnapshot", "waiting for the first feed snapshot; existing mirrors are kept")
	case o.applyErr != nil:
		set(ferryv1.LinkSynced, metav1.ConditionFalse, "WriteFailed", o.applyErr.Error())
	case o.health.Level == mirror.Stale:
		set(ferryv1.LinkSynced, metav1.ConditionFalse, "Withdrawn", "mirrors withdrawn: the remote is stale")
	case len(problems) > 0 && problems[0].reason != mirror.NoTCPPorts:
		// Exports without a TCP port are skipped by design and do not make
		// the Link unsynced; the message still lists them.
		set(ferryv1.LinkSynced, metav1.ConditionFalse, string(problems[0].reason), problems[0].text)
	default:
		set(ferryv1.LinkSynced, metav1.ConditionTrue, "Synced", fmt.Sprintf("%d exports mirrored", o.state.Imported))
	}

	versionChanged := false
	if synced {
		versionChanged = int64(o.feed.Version) != old.LastSyncVersion
		st.LastSyncVersion = int64(o.feed.Version)
		st.ImportedServices = int32(o.state.Imported)
	}
	connChanged := condStatus(old.Conditions, ferryv1.LinkConnected) != condStatus(st.Conditions, ferryv1.LinkConnected)
	if !o.feed.SyncTime.IsZero() && (old.LastSyncTime == nil || versionChanged || connChanged) {
		t := metav1.NewTime(o.feed.SyncTime.Truncate(time.Second))
		st.LastSyncTime = &t
	}

	st.Message = message(l, o, synced, problems)
	return st
}

func condStatus(cs []metav1.Condition, typ string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(cs, typ); c != nil {
		return c.Status
	}
	return ""
}

// message is the one sentence a person reads first: what is wrong and what
// to do, most urgent first.
func message(l *ferryv1.Link, o outcome, synced bool, problems []problemText) string {
	cluster := l.Spec.ClusterName
	var parts []string
	if o.idErr != nil {
		parts = append(parts, fmt.Sprintf("%v; set it to %s's gateway identity, spiffe://%s.<mesh-domain>/ns/ferry-system/sa/ferry-gateway", o.idErr, cluster, cluster))
	}
	if o.policyErr != nil {
		parts = append(parts, o.policyErr.Error())
	}
	if o.feed.Reported && !o.feed.Connected {
		parts = append(parts, fmt.Sprintf("cannot reach %s's feed at %s (%s); imported mirrors stay. Check spec.gatewayAddresses, that %s's gateway is up and reachable from here, and that both clusters trust the same mesh root",
			cluster, strings.Join(l.Spec.GatewayAddresses, ", "), o.feed.ConnErr, cluster))
	}
	switch o.health.Level {
	case mirror.Unhealthy:
		parts = append(parts, fmt.Sprintf("%s's gateway fails its probes (%s): its mirrors stay, with endpoints not ready, until it answers again", cluster, o.health.DownError))
	case mirror.Stale:
		parts = append(parts, fmt.Sprintf("%s has been unreachable for longer than spec.stalenessLimit: its mirrors are withdrawn until it answers again", cluster))
	}
	if !synced {
		if len(parts) == 0 {
			return l.Status.Message
		}
		return clip(strings.Join(parts, "; "))
	}
	if o.applyErr != nil {
		parts = append(parts, fmt.Sprintf("writing mirrors failed, retrying: %v", o.applyErr))
	}
	for _, p := range problems {
		parts = append(parts, p.text)
	}
	return clip(strings.Join(parts, "; "))
}

type problemText struct {
	reason mirror.Reason
	text   string
}

// summarize groups the problems by reason, most actionable first. The
// first one names the Synced condition's reason, so a missing namespace,
// which is often by design (the importer does not want that namespace) and
// which `ferry check` only warns about, comes after the problems that need
// an operator: it must not hide them.
func summarize(ps []mirror.Problem, cluster string) []problemText {
	by := map[mirror.Reason][]mirror.Problem{}
	for _, p := range ps {
		by[p.Reason] = append(by[p.Reason], p)
	}
	var out []problemText
	if c := by[mirror.NameClash]; len(c) > 0 {
		out = append(out, problemText{mirror.NameClash, fmt.Sprintf("%d exports blocked by objects Ferry does not own for this Link: %s; rename or delete them to import",
			len(c), list(c, func(p mirror.Problem) string { return p.Object + " (export " + p.Export.String() + ")" }))})
	}
	if e := by[mirror.PortsExhausted]; len(e) > 0 {
		out = append(out, problemText{mirror.PortsExhausted, fmt.Sprintf("%d exports not imported because the egress port range is full (%s); widen --egress-port-range",
			len(e), list(e, func(p mirror.Problem) string { return p.Export.String() }))})
	}
	if m := by[mirror.NamespaceMissing]; len(m) > 0 {
		seen := map[string]bool{}
		var nss []mirror.Problem
		for _, p := range m {
			if !seen[p.Export.Namespace] {
				seen[p.Export.Namespace] = true
				nss = append(nss, p)
			}
		}
		out = append(out, problemText{mirror.NamespaceMissing, fmt.Sprintf("%d exports of %s wait for namespaces that do not exist here: %s; create them to import",
			len(m), cluster, list(nss, func(p mirror.Problem) string { return p.Export.Namespace }))})
	}
	if n := by[mirror.NoTCPPorts]; len(n) > 0 {
		out = append(out, problemText{mirror.NoTCPPorts, fmt.Sprintf("%d exports have no TCP port, which is all the gateway carries: %s",
			len(n), list(n, func(p mirror.Problem) string { return p.Export.String() }))})
	}
	return out
}

func list(ps []mirror.Problem, f func(mirror.Problem) string) string {
	var items []string
	for i, p := range ps {
		if i == maxListed {
			items = append(items, fmt.Sprintf("and %d more", len(ps)-maxListed))
			break
		}
		items = append(items, f(p))
	}
	return strings.Join(items, ", ")
}

func clip(s string) string {
	if len(s) <= maxMessageLength {
		return s
	}
	return s[:maxMessageLength-3] + "..."
}
