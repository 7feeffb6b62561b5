package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// File names written by `ferry identity`; docs/identity.md describes them.
const (
	identityRootCertFile   = "ca.crt"
	identityRootKeyFile    = "ca.key"
	identityIssuerCertFile = "issuer.crt"
	identityIssuerKeyFile  = "issuer.key"
	identityBundleFile     = "bundle.crt"
)

func newIdentityCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	return newIdentityCommandAt(time.Now, kf)
}

// newIdentityCommandAt takes the clock so tests can pin "time left".
func newIdentityCommandAt(now func() time.Time, kf *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Make and inspect the mesh's CA material (root, per-cluster issuers)",
		Long: `Ferry's trust has three tiers: one mesh root that stays with the operator,
one issuer per cluster (an intermediate CA that can only sign identities in
that cluster's trust domain), and short-lived leaves that each cluster's
controller issues itself. These commands make the first two, and revoke a
cluster's issuer without a new root (revoke, unrevoke, revoked).`,
	}
	cmd.AddCommand(newIdentityInitCommand(now), newIdentityIssuerCommand(now), newIdentityInspectCommand(now),
		newIdentityRevokeCommand(now, false, kf), newIdentityRevokeCommand(now, true, kf), newIdentityRevokedCommand(kf))
	return cmd
}

func newIdentityInitCommand(now func() time.Time) *cobra.Command {
	var (
		mesh, out string
		validity  time.Duration
		force     bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the mesh root certificate and key",
		Example: `  ferry identity init --mesh-domain ferry.local --out ./mesh-ca
  # keep mesh-ca/ca.key offline; clusters never need it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := identity.NewRoot(mesh, validity, identity.WithClock(now))
			if err != nil {
				return err
			}
			keyPEM, err := root.KeyPEM()
			if err != nil {
				return err
			}
			err = identityWriteFiles(cmd.ErrOrStderr(), out, identitySetRoot, force,
				identityFile{identityRootCertFile, root.CertPEM(), identityPublicMode},
				identityFile{identityRootKeyFile, keyPEM, identitySecretMode})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Wrote mesh root for %s to %s (%s, %s), valid until %s.\nKeep %s offline: it can mint every cluster's issuer.\n",
				mesh, out, identityRootCertFile, identityRootKeyFile, root.Cert.NotAfter.UTC().Format(time.RFC3339),
				filepath.Join(out, identityRootKeyFile))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&mesh, "mesh-domain", contract.DefaultMeshDomain, "mesh domain; cluster C gets trust domain C.<mesh-domain>")
	f.StringVar(&out, "out", ".", "directory to write "+identityRootCertFile+" and "+identityRootKeyFile+" into (created 0700)")
	f.DurationVar(&validity, "validity", identity.DefaultRootValidity, "how long the root is valid")
	f.BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

func newIdentityIssuerCommand(now func() time.Time) *cobra.Command {
	var (
		cluster, rootDir, out, extraRoots string
		validity                          time.Duration
		force                             bool
	)
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Create a cluster's issuer (name-constrained intermediate) and trust bundle",
		Example: `  ferry identity issuer --cluster east --root-dir ./mesh-ca --out ./east
  # during a root rotation, trust the old root too:
  ferry identity issuer --cluster east --root-dir ./new-ca --extra-roots ./old-ca/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			if out == "" {
				out = cluster
			}
			root, err := identityLoadRoot(rootDir)
			if err != nil {
				return err
			}
			root.Now = now
			mesh, err := root.MeshDomain()
			if err != nil {
				return fmt.Errorf("root in %s: %w", rootDir, err)
			}
			issuer, err := root.NewIssuer(cluster, validity)
			if err != nil {
				return err
			}
			bundle, err := identity.NewBundle(mesh, root.Cert)
			if err != nil {
				return err
			}
			if extraRoots != "" {
				data, err := os.ReadFile(extraRoots)
				if err != nil {
					return fmt.Errorf("read --extra-roots: %w", err)
				}
				extra, err := identity.ParseBundle(mesh, data)
				if err != nil {
					return fmt.Errorf("--extra-roots %s: %w", extraRoots, err)
				}
				bundle, err = identity.NewBundle(mesh, append(bundle.Roots(), extra.Roots()...)...)
				if err != nil {
					return err
				}
			}
			keyPEM, err := issuer.KeyPEM()
			if err != nil {
				return err
			}
			err = identityWriteFiles(cmd.ErrOrStderr(), out, identitySetIssuer, force,
				identityFile{identityIssuerCertFile, issuer.CertPEM(), identityPublicMode},
				identityFile{identityIssuerKeyFile, keyPEM, identitySecretMode},
				identityFile{identityBundleFile, bundle.PEM(), identityPublicMode})
			if err != nil {
				return err
			}
			td, _ := issuer.TrustDomain()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Wrote issuer for %s (trust domain %s) to %s (%s, %s, %s with %d root(s)), valid until %s.\n",
				cluster, td, out, identityIssuerCertFile, identityIssuerKeyFile, identityBundleFile, len(bundle.Roots()),
				issuer.Cert.NotAfter.UTC().Format(time.RFC3339))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "cluster name (a DNS label), as given to --cluster-name at install")
	f.StringVar(&rootDir, "root-dir", ".", "directory holding "+identityRootCertFile+" and "+identityRootKeyFile+" from 'ferry identity init'")
	f.StringVar(&out, "out", "", "directory to write the issuer into (default: the cluster name; created 0700)")
	f.StringVar(&extraRoots, "extra-roots", "", "PEM file of further roots to trust in "+identityBundleFile+" (root rotation)")
	f.DurationVar(&validity, "validity", identity.DefaultIssuerValidity, "how long the issuer is valid (at most the root's remaining life)")
	f.BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

func identityLoadRoot(dir string) (*identity.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, identityRootCertFile))
	if err != nil {
		return nil, fmt.Errorf("read mesh root: %w (run `ferry identity init` or pass --root-dir)", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, identityRootKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read mesh root key: %w", err)
	}
	root, err := identity.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mesh root in %s: %w", dir, err)
	}
	return root, nil
}

func newIdentityInspectCommand(now func() time.Time) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a certificate (or bundle, or chain) is and when it expires",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			certs, err := identity.ReadCertificates(data)
			if errors.Is(err, identity.ErrKeyInCertPEM) {
				return fmt.Errorf("%s holds a private key; inspect shows certificates only and prints no key material", args[0])
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			t := now()
			descs := make([]identity.Description, len(certs))
			for i, c := range certs {
				descs[i] = identity.Describe(c, t)
			}
			return identityPrintDescriptions(cmd.OutOrStdout(), output, descs)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: text)")
	return cmd
}

func identityPrintDescriptions(w io.Writer, format string, descs []identity.Description) error {
	doc := struct {
		Certificates []identity.Description `json:"certificates"`
	}{descs}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "yaml":
		b, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "", "text":
	default:
		return fmt.Errorf("unknown output format %q: use json or yaml", format)
	}
	var b strings.Builder
	for i, d := range descs {
		if i > 0 {
			b.WriteString("\n")
		}
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(&b, "%-17s %s\n", k+":", v)
			}
		}
		row("Kind", d.Kind)
		row("Subject", d.Subject)
		row("Issuer", d.Issuer)
		row("SPIFFE ID", d.SPIFFEID)
		row("Trust domain", d.TrustDomain)
		row("Cluster", d.Cluster)
		row("Mesh domain", d.MeshDomain)
		row("ID problem", d.IDError)
		if d.SPIFFEID == "" {
			row("URIs", strings.Join(d.URIs, ", "))
		}
		row("DNS names", strings.Join(d.DNSNames, ", "))
		row("IP addresses", strings.Join(d.IPAddresses, ", "))
		row("Public key", d.PublicKey)
		row("Key SHA-256", d.SPKISHA256)
		row("Key usage", strings.Join(d.KeyUsage, ", "))
		row("Ext key usage", strings.Join(d.ExtKeyUsage, ", "))
		if nc := d.NameConstraints; nc != nil {
			crit := "not critical"
			if nc.Critical {
				crit = "critical"
			}
			row("Name constraints", crit)
			row("  permit URI", strings.Join(nc.PermittedURIDomains, ", "))
			row("  exclude URI", strings.Join(nc.ExcludedURIDomains, ", "))
			row("  permit DNS", strings.Join(nc.PermittedDNSDomains, ", "))
			row("  exclude DNS", identityShowEmpty(nc.ExcludedDNSDomains))
			row("  exclude email", identityShowEmpty(nc.ExcludedEmail))
			row("  exclude IP", strings.Join(nc.ExcludedIPRanges, ", "))
		}
		row("Serial", d.Serial)
		row("Not before", d.NotBefore.Format(time.RFC3339))
		row("Not after", d.NotAfter.Format(time.RFC3339))
		if d.RenewAt != nil {
			row("Renew at", d.RenewAt.Format(time.RFC3339))
		}
		row("Time left", identityHumanDuration(d.TimeLeft))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// identityShowEmpty renders the empty constraint, which means "every name
// of this type", so it does not vanish from the output.
func identityShowEmpty(vals []string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		if v == "" {
			v = "(all)"
		}
		out[i] = v
	}
	return strings.Join(out, ", ")
}

func identityHumanDuration(d time.Duration) string {
	if d <= 0 {
		return "EXPIRED " + identitySpan(-d) + " ago"
	}
	return identitySpan(d)
}

func identitySpan(d time.Duration) string {
	d = d.Truncate(time.Minute)
	days := d / (24 * time.Hour)
	rest := d - days*24*time.Hour
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	default:
		return "<1m"
	}
}
