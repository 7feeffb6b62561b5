// Package crds embeds the CustomResourceDefinitions that controller-gen
// generates from api/v1alpha1 (`make generate`), so that `ferry install`, the
// Helm chart and the test harness all serve the same schema.
package crds

import _ "embed" // for go:embed

// Link is the ferry.dev Link CRD.
//
//go:embed ferry.dev_links.yaml
var Link []byte

// All returns every Ferry CRD.
func All() [][]byte { return [][]byte{Link} }
