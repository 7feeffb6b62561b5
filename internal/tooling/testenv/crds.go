package testenv

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// CRDEstablishTimeout bounds how long InstallCRDs waits for each CRD.
const CRDEstablishTimeout = 30 * time.Second

// InstallCRDs creates (or updates) each CRD from its YAML and waits until the
// API server serves it.
func InstallCRDs(ctx context.Context, cfg *rest.Config, docs ...[]byte) error {
	if len(docs) == 0 {
		return nil
	}
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("crds: %w", err)
	}
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	var names []string
	for _, doc := range docs {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(doc, &crd); err != nil {
			return fmt.Errorf("crds: decode: %w", err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
			return fmt.Errorf("crds: document is not a CustomResourceDefinition (kind %q, name %q)", crd.Kind, crd.Name)
		}
		names = append(names, crd.Name)
		_, err := api.Create(ctx, &crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			var cur *apiextensionsv1.CustomResourceDefinition
			if cur, err = api.Get(ctx, crd.Name, metav1.GetOptions{}); err == nil {
				crd.ResourceVersion = cur.ResourceVersion
				_, err = api.Update(ctx, &crd, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return fmt.Errorf("crds: apply %s: %w", crd.Name, err)
		}
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, CRDEstablishTimeout, true, func(ctx context.Context) (bool, error) {
			crd, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("crds: %s not established: %w", name, err)
		}
	}
	return nil
}
