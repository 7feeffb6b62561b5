package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ApplyYAML applies every object of a multi-document YAML stream, as
// `kubectl apply --server-side -f -` would: the way an operator feeds
// `ferry install` output to a cluster. Objects are applied in order; the
// first refusal stops it.
func (c *Cluster) ApplyYAML(ctx context.Context, data []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for n := 0; ; n++ {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: document %d: %w", c.Name, n, err)
		}
		if len(m) == 0 {
			continue // an empty document between separators
		}
		u := &unstructured.Unstructured{Object: m}
		if err := c.API.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("%s: apply %s %s: %w", c.Name, u.GetKind(), u.GetName(), err)
		}
	}
}
