package exports

import (
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
)

// Reasons for the Valid condition. The MCS reasons come first; Ferry adds
// its own where a Service is a valid Kubernetes Service that Ferry still
// cannot carry, so the user sees why rather than a generic failure.
const (
	ReasonValid              = string(mcsv1beta1.ServiceExportReasonValid)
	ReasonNoService          = string(mcsv1beta1.ServiceExportReasonNoService)
	ReasonInvalidServiceType = string(mcsv1beta1.ServiceExportReasonInvalidServiceType)
	// ReasonNoTCPPorts: the gateway carries TCP only, and the Service has no
	// TCP port, so there would be nothing an importer could reach.
	ReasonNoTCPPorts = "NoTCPPorts"
	// ReasonImportedService: the Service is a Ferry mirror of another
	// cluster's export. Re-exporting it would let exports loop between
	// clusters, so it is refused.
	ReasonImportedService = "ImportedService"
	// ReasonTooLarge: the exported labels and annotations exceed
	// MaxExportedMetadataBytes.
	ReasonTooLarge = "ExportTooLarge"
)

// Status is the outcome of validating one ServiceExport. It feeds the
// ServiceExport's conditions (see DesiredConditions) and, for a person,
// explains why a Service is or is not exported.
type Status struct {
	Key
	// Generation is the ServiceExport's metadata.generation, recorded as the
	// conditions' observedGeneration.
	Generation int64
	// Valid is true when the export is in the export set.
	Valid bool
	// Reason is one of the Reason constants; Message says it for a person.
	Reason  string
	Message string
	// Warnings name what was left out of a valid export (non-TCP ports,
	// invalid exported labels, invalid allowed-clusters entries), sorted.
	Warnings []string
}

func (s *Status) equal(o *Status) bool {
	if s.Key != o.Key || s.Generation != o.Generation || s.Valid != o.Valid || s.Reason != o.Reason || s.Message != o.Message || len(s.Warnings) != len(o.Warnings) {
		return false
	}
	for i := range s.Warnings {
		if s.Warnings[i] != o.Warnings[i] {
			return false
		}
	}
	return true
}
