package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/install"
)

func newInstallCommand() *cobra.Command {
	var (
		o                                         install.Options
		serviceType, identityDir                  string
		issuerCertPath, issuerKeyPath, bundlePath string
		output                                    *string
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Print the manifests that install Ferry in one cluster",
		Long: `Print every object Ferry needs in one cluster — the ferry-system Namespace,
the Link and MCS CRDs, ServiceAccounts, least-privilege RBAC, the issuer
Secret, the controller and gateway Deployments, the gateway Service and its
PodDisruptionBudget — for kubectl apply. Nothing is sent to a cluster.

The output holds the cluster's issuer private key: pipe it to kubectl, do not
store it. See docs/install.md and docs/rbac.md.`,
		Example: `  ferry identity init --out mesh-ca
  ferry identity issuer --cluster east --root-dir mesh-ca --out east
  ferry install --cluster-name east --identity-dir east | kubectl --context east apply -f -
  ferry install --cluster-name east --identity-dir east --image-registry localhost:5000/ferry --image-tag dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := deprecatedRegistry(cmd); err != nil {
				return err
			}
			o.GatewayServiceType = corev1.ServiceType(serviceType)
			var err error
			o.IssuerCertPEM, o.IssuerKeyPEM, o.TrustBundlePEM, err = readIssuerFiles(o.ClusterName, identityDir, issuerCertPath, issuerKeyPath, bundlePath)
			if err != nil {
				return err
			}
			objs, err := install.Render(o)
			if err != nil {
				return strippedInvalid(err)
			}
			docs, err := install.Unstructured(objs)
			if err != nil {
				return err
			}
			return printManifests(cmd.OutOrStdout(), *output, docs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ClusterName, "cluster-name", "", "this cluster's name, a DNS label; must match the issuer (required)")
	f.StringVar(&o.MeshDomain, "mesh-domain", "", "mesh domain (default: the issuer's, normally ferry.local)")
	f.StringVar(&identityDir, "identity-dir", "", "directory written by 'ferry identity issuer' ("+identityIssuerCertFile+", "+identityIssuerKeyFile+", "+identityBundleFile+")")
	f.StringVar(&issuerCertPath, "issuer-cert", "", "issuer certificate PEM (overrides --identity-dir)")
	f.StringVar(&issuerKeyPath, "issuer-key", "", "issuer private key PEM (overrides --identity-dir)")
	f.StringVar(&bundlePath, "trust-bundle", "", "trust bundle PEM, the mesh root(s) (overrides --identity-dir)")
	f.StringVar(&serviceType, "gateway-service-type", string(install.DefaultGatewayServiceType), "gateway Service type: LoadBalancer, NodePort or ClusterIP")
	f.Int32Var(&o.GatewayReplicas, "gateway-replicas", install.DefaultGatewayReplicas, "gateway replicas")
	f.Int32Var(&o.ControllerReplicas, "controller-replicas", install.DefaultControllerReplicas, "controller replicas (leader-elected; more are standbys)")
	f.StringVar(&o.Registry, "image-registry", install.DefaultRegistry, "image registry for the default images, e.g. the one make images pushed to")
	// --registry was the first name; scripts that use it keep working. Not
	// pflag's MarkDeprecated: cobra prints its notice with c.Print, which
	// is stdout here, and would put it in the manifests piped to kubectl.
	f.StringVar(&o.Registry, "registry", install.DefaultRegistry, "deprecated: use --image-registry")
	_ = f.MarkHidden("registry")
	f.StringVar(&o.ImageTag, "image-tag", "", "image tag for the default images (default: this CLI's version)")
	f.StringVar(&o.ControllerImage, "controller-image", "", "full controller image reference (overrides --image-registry and --image-tag)")
	f.StringVar(&o.GatewayImage, "gateway-image", "", "full gateway image reference (overrides --image-registry and --image-tag)")
	f.StringVar(&o.EgressPorts, "egress-ports", contract.DefaultEgressRange().String(), "port range FIRST-LAST for egress listeners on gateway pods")
	f.StringVar(&o.CoreDNSServiceAccount, "coredns-service-account", install.DefaultCoreDNSServiceAccount, "NAMESPACE/NAME of the cluster DNS's service account, which the install lets read ServiceImports for clusterset.local")
	f.BoolVar(&o.Alerts, "alerts", false, "also print Ferry's alerting rules as a PrometheusRule (needs the prometheus-operator's monitoring.coreos.com CRDs; docs/operations.md)")
	output = addOutputFlag(cmd, outputYAML, append([]string{outputYAML, outputJSON}, templateFormats...)...)

	_ = cmd.MarkFlagDirname("identity-dir")
	for _, name := range []string{"issuer-cert", "issuer-key", "trust-bundle"} {
		_ = cmd.MarkFlagFilename(name, "crt", "pem", "key")
	}
	_ = cmd.RegisterFlagCompletionFunc("gateway-service-type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var types []string
		for _, t := range install.ServiceTypes() {
			types = append(types, string(t))
		}
		return types, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// deprecatedRegistry says on stderr that --registry is now
// --image-registry, and refuses both at once: both set the same field, and
// which one wins would depend on their order.
func deprecatedRegistry(cmd *cobra.Command) error {
	f := cmd.Flags()
	if !f.Changed("registry") {
		return nil
	}
	if f.Changed("image-registry") {
		return errors.New("--registry is the old name of --image-registry: give only --image-registry")
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "Flag --registry has been deprecated, use --image-registry")
	return nil
}

// readIssuerFiles reads the issuer material: each file from its own flag if
// given, else from dir under the name `ferry identity issuer` writes. A file
// that is named by nothing stays empty, and install.Render says which flags
// are missing.
func readIssuerFiles(cluster, dir, certPath, keyPath, bundlePath string) (cert, key, bundle []byte, err error) {
	read := func(flag, path, name string) ([]byte, error) {
		if path == "" && dir != "" {
			path = filepath.Join(dir, name)
		}
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s does not exist (make it with `ferry identity issuer --cluster %s`, or pass %s)", flag, path, clusterOrName(cluster), flag)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		return b, nil
	}
	if cert, err = read("--issuer-cert", certPath, identityIssuerCertFile); err != nil {
		return nil, nil, nil, err
	}
	if key, err = read("--issuer-key", keyPath, identityIssuerKeyFile); err != nil {
		return nil, nil, nil, err
	}
	if bundle, err = read("--trust-bundle", bundlePath, identityBundleFile); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, bundle, nil
}

func clusterOrName(c string) string {
	if c == "" {
		return "NAME"
	}
	return c
}

// strippedInvalid drops the "invalid install options: " prefix: the CLI
// already says "Error:", and the rest of the message names the flag.
func strippedInvalid(err error) error {
	if !errors.Is(err, install.ErrInvalidOptions) {
		return err
	}
	return errors.New(strings.TrimPrefix(err.Error(), install.ErrInvalidOptions.Error()+": "))
}
