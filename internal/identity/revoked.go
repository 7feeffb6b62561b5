package identity

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Limits of a deny list. A deny list travels in a Secret beside the trust
// bundle and is read by every gateway and controller, so its size is
// bounded; past a limit the whole list is refused, never truncated: a
// truncated deny list would quietly trust what it meant to refuse.
const (
	// MaxRevoked is the most entries a deny list may hold. A mesh revokes
	// an issuer per compromised cluster, and an entry can be dropped once
	// the certificate it names has expired, so 1024 is far more than any
	// mesh needs; at MaxRevocationNote per entry the encoded list stays
	// under 300 KiB, well inside a Secret's 1 MiB.
	MaxRevoked = 1024
	// MaxRevocationNote is the longest note an entry may carry.
	MaxRevocationNote = 200
)

// revokedPrefix starts every entry: the hash and what it is a hash of are
// named, so a later format (another hash, or the whole DER) can be told
// apart rather than misread.
const revokedPrefix = "sha256:"

// Revocation is one entry of a deny list: the SHA-256 of a certificate's
// DER SubjectPublicKeyInfo. It names a key, not a certificate or a
// cluster: every certificate for a compromised key is refused, including
// one that was re-signed with new dates, while the cluster's next issuer
// (a new key) is trusted at once.
type Revocation struct {
	SPKISHA256 [sha256.Size]byte
	// Note is for people (cluster, subject, serial, when); it never
	// decides anything. Printable ASCII, at most MaxRevocationNote bytes.
	Note string
}

// SPKIFingerprint is the SHA-256 of c's SubjectPublicKeyInfo.
func SPKIFingerprint(c *x509.Certificate) [sha256.Size]byte {
	return sha256.Sum256(c.RawSubjectPublicKeyInfo)
}

// RevocationOf is the entry that revokes c's key, with note (WithNote).
func RevocationOf(c *x509.Certificate, note string) Revocation {
	return Revocation{SPKISHA256: SPKIFingerprint(c)}.WithNote(note)
}

// WithNote returns r with note, made writable: bytes that are not
// printable ASCII become '?', and it is cut at MaxRevocationNote.
func (r Revocation) WithNote(note string) Revocation {
	note = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, note)
	if len(note) > MaxRevocationNote {
		note = note[:MaxRevocationNote]
	}
	r.Note = note
	return r
}

// Fingerprint is the entry's hash as it is written: "sha256:<hex>".
func (r Revocation) Fingerprint() string { return revokedPrefix + hex.EncodeToString(r.SPKISHA256[:]) }

// ParseFingerprint reads "sha256:<64 lowercase hex digits>".
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h, ok := strings.CutPrefix(s, revokedPrefix)
	if !ok || len(h) != 2*sha256.Size || strings.ToLower(h) != h {
		return fp, fmt.Errorf("%w: want %s followed by 64 lowercase hex digits", ErrInvalidRevocation, revokedPrefix)
	}
	if _, err := hex.Decode(fp[:], []byte(h)); err != nil {
		return fp, fmt.Errorf("%w: %w", ErrInvalidRevocation, err)
	}
	return fp, nil
}

// ParseRevoked reads a deny list: one entry per line,
//
//	sha256:<64 lowercase hex digits>[ <note>]
//
// with blank lines and lines starting with '#' ignored. A repeated hash
// counts once (the first note is kept). Any other line, or more than
// MaxRevoked entries, refuses the whole list; errors name the line, never
// quote it. Empty input is an empty list.
func ParseRevoked(data []byte) ([]Revocation, error) {
	var out []Revocation
	seen := map[[sha256.Size]byte]bool{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		r, err := parseRevocation(string(line))
		if err != nil {
			return nil, fmt.Errorf("deny list line %d: %w", n+1, err)
		}
		if seen[r.SPKISHA256] {
			continue
		}
		seen[r.SPKISHA256] = true
		if len(out) == MaxRevoked {
			return nil, fmt.Errorf("%w: more than %d entries (line %d)", ErrTooManyRevoked, MaxRevoked, n+1)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRevocation(line string) (Revocation, error) {
	fp, note, hasNote := strings.Cut(line, " ")
	var r Revocation
	var err error
	if r.SPKISHA256, err = ParseFingerprint(fp); err != nil {
		return Revocation{}, err
	}
	if hasNote {
		if len(note) > MaxRevocationNote {
			return Revocation{}, fmt.Errorf("%w: note longer than %d bytes", ErrInvalidRevocation, MaxRevocationNote)
		}
		if i := strings.IndexFunc(note, func(r rune) bool { return r < 0x20 || r > 0x7e }); i >= 0 {
			return Revocation{}, fmt.Errorf("%w: note has a byte that is not printable ASCII at %d", ErrInvalidRevocation, i)
		}
		r.Note = note
	}
	return r, nil
}

// EncodeRevoked writes rs in the form ParseRevoked reads, in order, each
// hash once, under a header that says what the list is. An empty list
// encodes as nil, so that a Secret without revocations carries no key.
func EncodeRevoked(rs []Revocation) []byte {
	if len(rs) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# Ferry deny list: SHA-256 of each revoked key's SubjectPublicKeyInfo.\n")
	b.WriteString("# Change it with `ferry identity revoke` / `unrevoke`; see docs/identity.md.\n")
	seen := map[[sha256.Size]byte]bool{}
	for _, r := range rs {
		if seen[r.SPKISHA256] {
			continue
		}
		seen[r.SPKISHA256] = true
		b.WriteString(r.Fingerprint())
		if r.Note != "" {
			b.WriteByte(' ')
			b.WriteString(r.Note)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// WithRevoked returns a copy of b whose deny list is rs (replacing any
// list b had); b itself is unchanged. It refuses more than MaxRevoked
// distinct entries, and an entry that names one of b's roots: revoking a
// root would refuse the whole mesh, and a root leaves by a new bundle.
func (b *Bundle) WithRevoked(rs ...Revocation) (*Bundle, error) {
	nb := &Bundle{meshDomain: b.meshDomain, roots: b.roots, pool: b.pool}
	if len(rs) == 0 {
		return nb, nil
	}
	nb.deny = make(map[[sha256.Size]byte]bool, len(rs))
	for _, r := range rs {
		if nb.deny[r.SPKISHA256] {
			continue
		}
		if len(nb.revoked) == MaxRevoked {
			return nil, fmt.Errorf("%w: more than %d entries", ErrTooManyRevoked, MaxRevoked)
		}
		for _, root := range b.roots {
			if SPKIFingerprint(root) == r.SPKISHA256 {
				return nil, fmt.Errorf("%w: %s is the key of root %q; remove the root from the bundle instead",
					ErrRevokedRoot, r.Fingerprint(), subjectOf(root))
			}
		}
		nb.deny[r.SPKISHA256] = true
		nb.revoked = append(nb.revoked, r)
	}
	return nb, nil
}

// Revoked returns a copy of the deny list, in order.
func (b *Bundle) Revoked() []Revocation { return slices.Clone(b.revoked) }

// RevokedText encodes the deny list as EncodeRevoked does (nil when
// empty): what goes into a Secret beside the roots' PEM.
func (b *Bundle) RevokedText() []byte { return EncodeRevoked(b.revoked) }

// IsRevoked reports whether c's key is on the deny list.
func (b *Bundle) IsRevoked(c *x509.Certificate) bool {
	return c != nil && b.deny[SPKIFingerprint(c)]
}

// firstRevoked is the first certificate of chain whose key is revoked.
func (b *Bundle) firstRevoked(chain []*x509.Certificate) *x509.Certificate {
	if len(b.deny) == 0 {
		return nil
	}
	for _, c := range chain {
		if b.IsRevoked(c) {
			return c
		}
	}
	return nil
}
