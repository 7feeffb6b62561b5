package exports

// Reasons for the Valid condition. The MCS reasons come first; Ferry adds
// its own where a Service is a valid Kubernetes Service that Ferry still
// cannot carry, so the user sees why rather than a generic failure.
const (
	// The MCS API's own reasons (mcsv1beta1.ServiceExportReason*; the
	// exportwatch tests hold these to them).
	ReasonValid              = "Valid"
	ReasonNoService          = "NoService"
	ReasonInvalidServiceType = "InvalidServiceType"
	// ReasonNoTCPPorts: the gateway carries TCP only, and the Service has no
	// TCP port, so there would be nothing an importer could reach.
	ReasonNoTCPPorts = "NoTCPPorts"
	// ReasonImportedService: the Service is a Ferry mirror of another
	// cluster's export, or a clusterset Service Ferry made of several.
	// Re-exporting it would let exports loop between clusters, so it is
	// refused.
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

// Equal reports whether s and o say the same.
func (s *Status) Equal(o *Status) bool {
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
