package netns

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Limits of the address plan: cluster indexes become an octet.
const MaxClusters = 200

// Site is one cluster's network: a namespace for its workloads, its control
// plane and its gateway.
type Site struct {
	Cluster string
	Index   int
	NS      *NS
	// WANAddr is the gateway's address on the WAN, the only address of this
	// cluster that other clusters can reach.
	WANAddr string
}

// PodAddr returns the address of the n-th workload (n in 1..254) in the
// cluster. Address .1 is conventionally the gateway's pod address.
func (s *Site) PodAddr(n int) string { return fmt.Sprintf("198.18.%d.%d", s.Index, n) }

// ExtraWANAddrs gives the site n more addresses on the WAN,
// 198.19.0.(100+i) for i < n (n ≤ 100): other sources in the site's
// namespace, as hosts behind it would be, for a test that needs more than
// one (a flood from many addresses). Only one site of a topology may hold
// them. Adding them again is harmless.
func (s *Site) ExtraWANAddrs(n int) ([]string, error) {
	if n < 1 || n > 100 {
		return nil, fmt.Errorf("netns: %d extra WAN addresses: want 1 to 100", n)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("198.19.0.%d", 100+i)
		if err := s.NS.IP("addr", "replace", out[i]+"/24", "dev", "wan0"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GatewayPodAddr is the gateway pod's address inside its cluster.
func (s *Site) GatewayPodAddr() string { return s.PodAddr(1) }

// ControlPlaneAddr is where the cluster's API server listens: on the
// cluster's own network, so no other cluster has a route to it.
func (s *Site) ControlPlaneAddr() string { return s.PodAddr(2) }

// Topology is a set of sites joined by a WAN bridge.
type Topology struct {
	// Prefix names every namespace of this topology: ferry-<pid>-.
	Prefix string
	WAN    *NS
	Sites  []*Site
}

// namePrefix ties namespaces to the creating process, so a later run can tell
// a crashed run's leftovers from a live parallel run's.
func namePrefix(pid int) string { return "ferry-" + strconv.Itoa(pid) + "-" }

// NewTopology builds one site per cluster plus the WAN. It first removes
// namespaces left by runs whose process has died.
func NewTopology(clusters ...string) (t *Topology, err error) {
	if len(clusters) == 0 || len(clusters) > MaxClusters {
		return nil, fmt.Errorf("netns: need 1 to %d clusters, got %d", MaxClusters, len(clusters))
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	ReapStale()
	t = &Topology{Prefix: namePrefix(os.Getpid()) + strconv.FormatInt(nextID(), 36) + "-"}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.WAN, err = create(t.Prefix + "wan"); err != nil {
		return nil, err
	}
	if err := t.WAN.IP("link", "add", "br0", "type", "bridge"); err != nil {
		return nil, err
	}
	if err := t.WAN.IP("link", "set", "br0", "up"); err != nil {
		return nil, err
	}
	for i, name := range clusters {
		site := &Site{Cluster: name, Index: i + 1, WANAddr: fmt.Sprintf("198.19.0.%d", 10+i+1)}
		if site.NS, err = create(t.Prefix + name); err != nil {
			return nil, err
		}
		t.Sites = append(t.Sites, site)
		veth := "v" + strconv.Itoa(site.Index)
		steps := [][]string{
			{"link", "add", veth, "type", "veth", "peer", "name", "wan0", "netns", site.NS.Name},
			{"link", "set", veth, "master", "br0"},
			{"link", "set", veth, "up"},
		}
		for _, s := range steps {
			if err := t.WAN.IP(s...); err != nil {
				return nil, err
			}
		}
		steps = [][]string{
			{"addr", "add", site.WANAddr + "/24", "dev", "wan0"},
			{"link", "set", "wan0", "up"},
			// A prefix on lo makes every address in it local, like 127/8: any
			// pod address can be bound without configuring it first.
			{"addr", "add", fmt.Sprintf("198.18.%d.0/24", site.Index), "dev", "lo"},
		}
		for _, s := range steps {
			if err := site.NS.IP(s...); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// Site returns the named cluster's site, or nil.
func (t *Topology) Site(cluster string) *Site {
	for _, s := range t.Sites {
		if s.Cluster == cluster {
			return s
		}
	}
	return nil
}

// nowhereMAC is a locally administered address no interface has: frames
// sent to it are flooded by the bridge and taken by no one.
const nowhereMAC = "02:00:00:00:fe:01"

// Partition cuts the WAN between sites a and b, as a failed link would:
// what each sends the other is dropped silently (no reset, no ICMP), so
// connections hang until their own timeouts notice, while both still reach
// every other site. Each site's neighbour entry for the other's WAN address
// points at nowhereMAC; heal removes the entries, and ARP finds the real
// ones again.
func (t *Topology) Partition(a, b string) (heal func() error, err error) {
	sa, sb := t.Site(a), t.Site(b)
	if sa == nil || sb == nil {
		return nil, fmt.Errorf("netns: partition: no site %q or %q", a, b)
	}
	pairs := [][2]*Site{{sa, sb}, {sb, sa}}
	heal = func() error {
		var errs []error
		for _, p := range pairs {
			if err := p[0].NS.IP("neigh", "del", p[1].WANAddr, "dev", "wan0"); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for _, p := range pairs {
		if err := p[0].NS.IP("neigh", "replace", p[1].WANAddr, "lladdr", nowhereMAC, "nud", "permanent", "dev", "wan0"); err != nil {
			_ = heal()
			return nil, fmt.Errorf("netns: partition %s from %s: %w", a, b, err)
		}
	}
	return heal, nil
}

// Close deletes every namespace of the topology.
func (t *Topology) Close() error {
	var errs []error
	for _, s := range t.Sites {
		if s.NS != nil {
			errs = append(errs, s.NS.Delete())
		}
	}
	if t.WAN != nil {
		errs = append(errs, t.WAN.Delete())
	}
	return errors.Join(errs...)
}

// ErrNotRoot says why a topology cannot be built.
var ErrNotRoot = errors.New("netns: network namespaces need root (CAP_NET_ADMIN); run as root, as CI does")

var idCounter atomic.Int64

// nextID keeps two topologies of one process apart.
func nextID() int64 { return idCounter.Add(1) }

// ReapStale deletes namespaces whose creating process is gone.
func ReapStale() {
	entries, err := os.ReadDir(runDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "ferry-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		_ = ip("netns", "delete", e.Name())
	}
}
