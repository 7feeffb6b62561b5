package claims

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

// Owner is who holds a claim: a Link ("link/<name>") or the clusterset
// reconciler (Clusterset).
type Owner string

// Clusterset owns the claims of clusterset Services.
const Clusterset Owner = "clusterset"

const linkPrefix = "link/"

// LinkOwner is the owner of the claims of Link name's mirrors.
func LinkOwner(name string) Owner { return Owner(linkPrefix + name) }

// Link returns the Link an owner stands for, if it is one.
func (o Owner) Link() (string, bool) {
	name, ok := strings.CutPrefix(string(o), linkPrefix)
	return name, ok && name != ""
}

func (o Owner) validate() error {
	if o == Clusterset {
		return nil
	}
	name, ok := o.Link()
	if !ok {
		return fmt.Errorf("owner %q is neither %q nor %s<link>", o, Clusterset, linkPrefix)
	}
	if err := identity.ValidateDNSLabel(name); err != nil {
		return fmt.Errorf("owner %q: %w", o, err)
	}
	return nil
}

// Claim says that one port of one Service holds an egress port: Service is
// the local object's name (a mirror or a clusterset Service) and Port the
// Service port it carries.
type Claim struct {
	Owner     Owner
	Namespace string
	Service   string
	Port      int32
}

func (c Claim) String() string {
	return fmt.Sprintf("%s %s/%s:%d", c.Owner, c.Namespace, c.Service, c.Port)
}

// Validate checks a claim's fields: the owner's form, DNS-label names and a
// real port.
func (c Claim) Validate() error {
	if err := c.Owner.validate(); err != nil {
		return err
	}
	if err := identity.ValidateDNSLabel(c.Namespace); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if err := identity.ValidateDNSLabel(c.Service); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("port %d is not 1-65535", c.Port)
	}
	return nil
}

// Table maps each claimed egress port to its claim.
type Table map[int32]Claim

// Holds reports whether egress is claimed by exactly c.
func (t Table) Holds(egress int32, c Claim) bool {
	got, ok := t[egress]
	return ok && got == c
}

// Of returns the ports owner holds, by claim.
func (t Table) Of(owner Owner) map[Claim]int32 {
	out := map[Claim]int32{}
	for p, c := range t {
		if c.Owner == owner {
			out[c] = p
		}
	}
	return out
}

// ErrMalformed marks a shard whose data does not decode.
var ErrMalformed = errors.New("malformed port claims")

// Encode writes a shard's claims, one line per port in port order:
// "<egress> <owner> <namespace> <service> <port>". Every field is a DNS
// label or a number, so a space never appears inside one.
func Encode(shard map[int32]Claim) string {
	ports := make([]int32, 0, len(shard))
	for p := range shard {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	var b strings.Builder
	for _, p := range ports {
		c := shard[p]
		fmt.Fprintf(&b, "%d %s %s %s %d\n", p, c.Owner, c.Namespace, c.Service, c.Port)
	}
	return b.String()
}

// Decode reads what Encode wrote for the shard that starts at first. It
// refuses the whole shard on any defect (a port outside the shard, a port
// twice, a malformed field): the record is written only by the controller,
// so a defect means corruption or tampering, and half a record would free
// ports that are still held.
func Decode(first int32, data string) (map[int32]Claim, error) {
	out := map[int32]Claim{}
	for i, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if line == "" && data == "" {
			break
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: shard %d line %d: %s", ErrMalformed, first, i+1, fmt.Sprintf(format, args...))
		}
		f := strings.Split(line, " ")
		if len(f) != 5 {
			return nil, bad("want 5 fields separated by one space, got %d", len(f))
		}
		egress, err := parsePort(f[0])
		if err != nil {
			return nil, bad("egress port: %v", err)
		}
		if contract.PortClaimsShardOf(egress) != first {
			return nil, bad("port %d is not in this shard", egress)
		}
		if _, dup := out[egress]; dup {
			return nil, bad("port %d claimed twice", egress)
		}
		port, err := parsePort(f[4])
		if err != nil {
			return nil, bad("service port: %v", err)
		}
		c := Claim{Owner: Owner(f[1]), Namespace: f[2], Service: f[3], Port: port}
		if err := c.Validate(); err != nil {
			return nil, bad("%v", err)
		}
		out[egress] = c
	}
	return out, nil
}

// parsePort reads a port in its one canonical spelling.
func parsePort(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || strconv.FormatInt(n, 10) != s || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port", s)
	}
	return int32(n), nil
}
