package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// revokeUpdateAttempts bounds the read-modify-write of the issuer Secret
// when another writer (the controller adds its labels, a second operator)
// changes it between our read and our update.
const revokeUpdateAttempts = 5

// RevocationEntry is one deny-list entry as the revocation commands print it.
type RevocationEntry struct {
	Fingerprint string `json:"fingerprint"`
	Note        string `json:"note,omitempty"`
}

// RevocationReport is what `ferry identity revoke|unrevoke|revoked -o json` prints.
type RevocationReport struct {
	Context string            `json:"context"`
	Secret  string            `json:"secret"`
	Added   []RevocationEntry `json:"added,omitempty"`
	Removed []RevocationEntry `json:"removed,omitempty"`
	Revoked []RevocationEntry `json:"revoked"`
	// GatewayInSync says whether ferry-gateway-tls, which the gateways
	// read, carries the same list; the controller copies it there.
	GatewayInSync *bool `json:"gatewayInSync,omitempty"`
}

func entriesOf(rs []identity.Revocation) []RevocationEntry {
	out := make([]RevocationEntry, 0, len(rs))
	for _, r := range rs {
		out = append(out, RevocationEntry{Fingerprint: r.Fingerprint(), Note: r.Note})
	}
	return out
}

func newIdentityRevokeCommand(now func() time.Time, undo bool, kf *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		certFiles, fingerprints []string
		note                    string
	)
	use, short, verb := "revoke", "Revoke issuers in this cluster's trust bundle (deny list), without a new root", "revoke"
	example := `  # in every cluster but east (east gets a new issuer instead):
  ferry --context west identity revoke --issuer-cert east/issuer.crt
  ferry --context north identity revoke --issuer-cert east/issuer.crt
  # when the certificate file is gone, by the hash that 'ferry identity inspect' shows:
  ferry --context west identity revoke --fingerprint sha256:3f2a... --note "east, compromised"`
	if undo {
		use, short, verb = "unrevoke", "Remove issuers from this cluster's deny list", "unrevoke"
		example = `  ferry --context west identity unrevoke --fingerprint sha256:3f2a...`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: `Adds keys to (or, for unrevoke, removes them from) the deny list that travels
with the trust bundle, in the Secret ferry-system/` + contract.IssuerSecret + ` of the current
context's cluster (key ` + certsecret.RevokedKey + `). The controller copies it to
` + contract.GatewayTLSSecret + `; from then on no handshake from a revoked key succeeds, and
live connections are verified again. An entry is the SHA-256 of the issuer's public key
(SubjectPublicKeyInfo): a new issuer for the same cluster has a new key and is trusted.
Run it against every cluster that must stop trusting the key.`,
		Example: example,
		Args:    noArgs(use),
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := outputFlagValue(cmd)
			targets, err := revocationTargets(certFiles, fingerprints, note, now)
			if err != nil {
				return err
			}
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			rep, err := updateDenyList(cmd.Context(), k, targets, undo)
			if err != nil {
				return err
			}
			return printout{
				value: rep,
				table: func(w io.Writer) error { return printRevocationChange(w, rep, verb) },
				// The object changed, as kubectl patch -o name prints it.
				names: []runtime.Object{objectRef(corev1.SchemeGroupVersion.WithKind("Secret"), contract.SystemNamespace, contract.IssuerSecret)},
			}.print(cmd.OutOrStdout(), format)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&certFiles, "issuer-cert", nil, "PEM or DER file of an issuer certificate (repeatable), e.g. east/issuer.crt")
	f.StringSliceVar(&fingerprints, "fingerprint", nil, "key hash sha256:<hex>, as 'ferry identity inspect' shows it (repeatable)")
	if !undo {
		f.StringVar(&note, "note", "", "a note kept with --fingerprint entries (printable ASCII); entries from --issuer-cert note the cluster and serial")
	}
	addOutputFlag(cmd, outputTable, append([]string{outputTable, outputName}, structuredFormats...)...)
	return cmd
}

func newIdentityRevokedCommand(kf *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoked",
		Short: "Show this cluster's deny list, and whether the gateways have it yet",
		Args:  noArgs("revoked"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := outputFlagValue(cmd)
			k, err := kubeConnect(kf)
			if err != nil {
				return err
			}
			s, _, list, err := readDenyList(cmd.Context(), k)
			if err != nil {
				return err
			}
			rep := RevocationReport{Context: k.Context, Secret: secretPath(contract.IssuerSecret), Revoked: entriesOf(list)}
			if gw, err := readSecret(cmd.Context(), k, contract.GatewayTLSSecret); err == nil {
				in := string(gw.Data[certsecret.RevokedKey]) == string(s.Data[certsecret.RevokedKey])
				rep.GatewayInSync = &in
			}
			return printValue(cmd.OutOrStdout(), format, rep, func(w io.Writer) error {
				if len(rep.Revoked) == 0 {
					fmt.Fprintf(w, "No revoked keys in %s (context %s).\n", rep.Secret, rep.Context)
				} else if err := printRevocations(w, rep.Revoked); err != nil {
					return err
				}
				printGatewaySync(w, rep)
				return nil
			})
		},
	}
	addOutputFlag(cmd, outputTable, append([]string{outputTable}, structuredFormats...)...)
	return cmd
}

func outputFlagValue(cmd *cobra.Command) string {
	return cmd.Flags().Lookup("output").Value.String()
}

// revocationTargets reads the entries named on the command line. A
// certificate must be an issuer (a CA constrained to one trust domain):
// roots leave by a new bundle, and leaves expire within a day.
func revocationTargets(certFiles, fingerprints []string, note string, now func() time.Time) ([]identity.Revocation, error) {
	if len(certFiles)+len(fingerprints) == 0 {
		return nil, errors.New("name what to revoke: --issuer-cert FILE or --fingerprint sha256:<hex>")
	}
	var out []identity.Revocation
	stamp := "revoked=" + now().UTC().Format(time.RFC3339)
	for _, path := range certFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--issuer-cert: %w", err)
		}
		certs, err := identity.ReadCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("--issuer-cert %s: %w", path, err)
		}
		c := certs[0]
		td, err := (&identity.CA{Cert: c}).TrustDomain()
		if err != nil || !c.IsCA {
			return nil, fmt.Errorf("--issuer-cert %s: %q is not a cluster issuer (want the issuer.crt that 'ferry identity issuer' wrote)", path, c.Subject.CommonName)
		}
		cluster, _, _ := strings.Cut(td, ".")
		out = append(out, identity.RevocationOf(c, fmt.Sprintf("cluster=%s serial=%x not-after=%s %s",
			cluster, c.SerialNumber, c.NotAfter.UTC().Format(time.RFC3339), stamp)))
	}
	for _, s := range fingerprints {
		fp, err := identity.ParseFingerprint(s)
		if err != nil {
			return nil, fmt.Errorf("--fingerprint %q: %w", s, err)
		}
		n := stamp
		if note != "" {
			n = note + " " + stamp
		}
		out = append(out, identity.Revocation{SPKISHA256: fp}.WithNote(n))
	}
	return out, nil
}

func secretPath(name string) string { return contract.SystemNamespace + "/" + name }

func readSecret(ctx context.Context, k *kubeTarget, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := k.Client.Get(ctx, types.NamespacedName{Namespace: contract.SystemNamespace, Name: name}, &s)
	return &s, err
}

// readDenyList reads the issuer Secret, its issuer certificate and its
// deny list. A list that does not parse is an error: writing over it
// would lose what it says.
func readDenyList(ctx context.Context, k *kubeTarget) (*corev1.Secret, *x509.Certificate, []identity.Revocation, error) {
	s, err := readSecret(ctx, k, contract.IssuerSecret)
	if apierrors.IsNotFound(err) {
		return nil, nil, nil, fmt.Errorf("no Secret %s in context %q: is Ferry installed there? (ferry install --identity-dir ...)", secretPath(contract.IssuerSecret), k.Context)
	}
	if err != nil {
		return nil, nil, nil, k.explain("read Secret "+secretPath(contract.IssuerSecret), err)
	}
	certs, err := identity.ParseCertificatesPEM(s.Data[certsecret.CertKey])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the Secret %s: %s: %w", secretPath(contract.IssuerSecret), certsecret.CertKey, err)
	}
	list, err := identity.ParseRevoked(s.Data[certsecret.RevokedKey])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the Secret %s: %s: %w (fix or remove that key with kubectl edit, then run this again)",
			secretPath(contract.IssuerSecret), certsecret.RevokedKey, err)
	}
	return s, certs[0], list, nil
}

// updateDenyList adds (or, with undo, removes) targets in the cluster's
// issuer Secret. The write carries the resourceVersion read, so a
// concurrent change is never overwritten; it is re-read and retried.
func updateDenyList(ctx context.Context, k *kubeTarget, targets []identity.Revocation, undo bool) (*RevocationReport, error) {
	for attempt := 1; ; attempt++ {
		s, own, list, err := readDenyList(ctx, k)
		if err != nil {
			return nil, err
		}
		rep := &RevocationReport{Context: k.Context, Secret: secretPath(contract.IssuerSecret)}
		next, changed, err := applyRevocations(list, targets, own, undo)
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", k.Context, err)
		}
		if undo {
			rep.Removed = entriesOf(changed)
		} else {
			rep.Added = entriesOf(changed)
		}
		rep.Revoked = entriesOf(next)
		if len(changed) == 0 {
			return rep, nil
		}
		// The controller will refuse what the bundle refuses; check here.
		mesh, err := (&identity.CA{Cert: own}).MeshDomain()
		if err != nil {
			return nil, fmt.Errorf("the issuer in %s: %w", rep.Secret, err)
		}
		if _, err := certsecret.ParseTrust(map[string][]byte{certsecret.BundleKey: s.Data[certsecret.BundleKey],
			certsecret.RevokedKey: identity.EncodeRevoked(next)}, mesh); err != nil {
			return nil, fmt.Errorf("the new deny list would be refused: %w", err)
		}
		s.Data[certsecret.RevokedKey] = identity.EncodeRevoked(next)
		if len(next) == 0 {
			delete(s.Data, certsecret.RevokedKey)
		}
		err = k.Client.Update(ctx, s)
		if apierrors.IsConflict(err) && attempt < revokeUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, k.explain("update Secret "+rep.Secret, err)
		}
		return rep, nil
	}
}

// applyRevocations returns list with targets added (or removed) and the
// entries that changed. Revoking the cluster's own issuer is refused: its
// own gateway would refuse its own leaf, and the cure is a new issuer.
func applyRevocations(list, targets []identity.Revocation, own *x509.Certificate, undo bool) (next, changed []identity.Revocation, err error) {
	has := map[[32]byte]bool{}
	for _, r := range list {
		has[r.SPKISHA256] = true
	}
	if undo {
		drop := map[[32]byte]bool{}
		for _, t := range targets {
			drop[t.SPKISHA256] = true
		}
		for _, r := range list {
			if drop[r.SPKISHA256] {
				changed = append(changed, r)
			} else {
				next = append(next, r)
			}
		}
		return next, changed, nil
	}
	ownFP := identity.SPKIFingerprint(own)
	next = list
	for _, t := range targets {
		if t.SPKISHA256 == ownFP {
			return nil, nil, fmt.Errorf("%s is this cluster's own issuer (%q): a cluster cannot distrust itself; revoke it in the other clusters, and give this one a new issuer with 'ferry identity issuer --force'",
				t.Fingerprint(), own.Subject.CommonName)
		}
		if has[t.SPKISHA256] {
			continue
		}
		has[t.SPKISHA256] = true
		next = append(next, t)
		changed = append(changed, t)
	}
	return next, changed, nil
}

func printRevocations(w io.Writer, es []RevocationEntry) error {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		rows = append(rows, []string{e.Fingerprint, e.Note})
	}
	return printTable(w, []string{"key sha256", "note"}, rows)
}

func printRevocationChange(w io.Writer, rep *RevocationReport, verb string) error {
	changed := rep.Added
	if verb == "unrevoke" {
		changed = rep.Removed
	}
	if len(changed) == 0 {
		state := "already revoked"
		if verb == "unrevoke" {
			state = "not revoked"
		}
		_, err := fmt.Fprintf(w, "Nothing to change: every key named is %s in %s (context %s).\n", state, rep.Secret, rep.Context)
		return err
	}
	done := "Revoked"
	if verb == "unrevoke" {
		done = "Removed from the deny list"
	}
	fmt.Fprintf(w, "%s in %s (context %s):\n", done, rep.Secret, rep.Context)
	for _, e := range changed {
		fmt.Fprintf(w, "  %s %s\n", e.Fingerprint, e.Note)
	}
	_, err := fmt.Fprintf(w, "The deny list now has %d key(s). The controller copies it to %s; check with 'ferry identity revoked'.\nRun this against every other cluster that must stop trusting these keys.\n",
		len(rep.Revoked), secretPath(contract.GatewayTLSSecret))
	return err
}

func printGatewaySync(w io.Writer, rep RevocationReport) {
	switch {
	case rep.GatewayInSync == nil:
		fmt.Fprintf(w, "%s is missing or unreadable: the gateway has no certificate from the controller (run 'ferry check').\n", secretPath(contract.GatewayTLSSecret))
	case *rep.GatewayInSync:
		fmt.Fprintf(w, "%s carries the same list: the gateways apply it.\n", secretPath(contract.GatewayTLSSecret))
	default:
		fmt.Fprintf(w, "%s does not carry this list yet: the controller copies it within seconds; if it stays so, run 'ferry check'.\n", secretPath(contract.GatewayTLSSecret))
	}
}
