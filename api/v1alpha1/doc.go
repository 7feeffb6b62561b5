// Package v1alpha1 is Ferry's API, group ferry.dev: the Link, which names a
// remote cluster an importing cluster takes exports from, and how to reach and
// trust its gateway. Links never hold an API server address or credential.
//
// +kubebuilder:object:generate=true
// +groupName=ferry.dev
package v1alpha1
