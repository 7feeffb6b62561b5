package cli

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
)

// importsHaveAddresses warns of ServiceImports that Ferry wrote without a
// clusterset address because the clusterset port range is full: their
// Ready condition is False with reason PortsExhausted. One that is only
// waiting for its Service's ClusterIP (Pending) is a moment of a normal
// write and is not reported.
func (c *checker) importsHaveAddresses(ctx context.Context) error {
	var list mcsv1beta1.ServiceImportList
	if err := c.k.Client.List(ctx, &list, client.HasLabels{contract.LabelClusterset}); err != nil {
		if apierrors.IsForbidden(err) {
			return skipf("may not list ServiceImports: %s", apierrors.ReasonForError(err))
		}
		return c.k.explain("list ServiceImports", err)
	}
	var short []string
	for _, si := range list.Items {
		if r := meta.FindStatusCondition(si.Status.Conditions, string(mcsv1beta1.ServiceImportConditionReady)); r != nil &&
			r.Status == metav1.ConditionFalse && r.Reason == clusterset.PortsExhausted {
			short = append(short, si.Namespace+"/"+si.Name)
		}
	}
	if len(short) == 0 {
		return nil
	}
	named := strings.Join(short[:min(len(short), maxListed)], ", ")
	if len(short) > maxListed {
		named += fmt.Sprintf(" and %d more", len(short)-maxListed)
	}
	return fmt.Errorf("%d ServiceImport(s) have no clusterset address because the clusterset port range is full: %s", len(short), named)
}
