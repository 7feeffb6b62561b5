package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types on a Link.
const (
	// LinkConnected is true while the importer holds a feed stream to the
	// remote gateway.
	LinkConnected = "Connected"
	// LinkSynced is true when the local mirrors match the last feed state.
	LinkSynced = "Synced"
	// LinkGatewayHealthy is true while the remote gateway answers probes
	// through the data path.
	LinkGatewayHealthy = "GatewayHealthy"
)

// Finalizer keeps a Link until everything it owns has been removed.
const Finalizer = "ferry.dev/link-cleanup"

// LinkSpec says where a remote cluster's gateway is and who it must be.
type LinkSpec struct {
	// ClusterName is the remote cluster's name (a DNS label), as in its
	// SPIFFE trust domain and in mirror names.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterName is immutable; create a new Link"
	ClusterName string `json:"clusterName"`

	// GatewayAddresses are host:port addresses of the remote gateway, tried
	// in order until one answers.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[^\s/]+:[0-9]{1,5}$`
	GatewayAddresses []string `json:"gatewayAddresses"`

	// GatewayIdentity is the SPIFFE ID the remote gateway must present.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^spiffe://[a-z0-9.-]+/`
	GatewayIdentity string `json:"gatewayIdentity"`

	// Namespaces, if set, limits the import to exports in these namespaces.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// Selector, if set, limits the import to exports whose Service labels
	// match it.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// Probe configures the health probe of the remote gateway.
	// +optional
	Probe ProbeSpec `json:"probe,omitempty"`

	// StalenessLimit, if set, withdraws this Link's mirrors once the remote
	// has been unreachable for this long. Unset keeps them (not ready) until
	// the remote returns or the Link is deleted.
	// +optional
	StalenessLimit *metav1.Duration `json:"stalenessLimit,omitempty"`
}

// ProbeSpec configures how the remote gateway's health is judged.
type ProbeSpec struct {
	// Period between probes. Default 3s.
	// +optional
	Period *metav1.Duration `json:"period,omitempty"`
	// Timeout of one probe. Default 2s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many consecutive failures mark the gateway
	// unhealthy, turning its mirrors' endpoints not-ready. Default 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`
}

// LinkStatus is the importer's view of the link.
type LinkStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Connected, Synced, GatewayHealthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastSyncTime is when the feed last delivered state (or a heartbeat
	// confirming it); its age is the age of the imported data.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// LastSyncVersion is the feed version the mirrors reflect.
	// +optional
	LastSyncVersion int64 `json:"lastSyncVersion,omitempty"`
	// ImportedServices counts the exports currently mirrored.
	// +optional
	ImportedServices int32 `json:"importedServices,omitempty"`
	// Message says, for a person, what is wrong and what to do.
	// +optional
	Message string `json:"message,omitempty"`
}

// Link names a remote cluster whose exports this cluster imports. Links are
// one-way: a Link in west to east makes east's exports appear in west.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=ferry
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterName`
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Healthy",type=string,JSONPath=`.status.conditions[?(@.type=="GatewayHealthy")].status`
// +kubebuilder:printcolumn:name="Imports",type=integer,JSONPath=`.status.importedServices`
// +kubebuilder:printcolumn:name="Last-Sync",type=date,JSONPath=`.status.lastSyncTime`
type Link struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LinkSpec   `json:"spec"`
	Status LinkStatus `json:"status,omitempty"`
}

// LinkList is a list of Links.
//
// +kubebuilder:object:root=true
type LinkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Link `json:"items"`
}
