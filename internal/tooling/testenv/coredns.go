package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ferry.dev/ferry/internal/contract"
)

// CoreDNSReadyTimeout bounds how long StartCoreDNS waits for CoreDNS to
// answer from its caches.
const CoreDNSReadyTimeout = 30 * time.Second

// ClustersetCorefile is a cluster DNS's Corefile with the MCS zone: the
// kubernetes plugin serves cluster.local and, with multicluster,
// clusterset.local from ServiceImports and their EndpointSlices (KEP-1645's
// DNS specification). listen is host:port; kubeconfig and context name the
// API server (in a cluster, CoreDNS uses its service account instead).
//
// The kubernetes block is contract.CorefileStanza, the one `ferry install`
// documents, with the kubeconfig line that a process outside a pod needs.
func ClustersetCorefile(listen, kubeconfig, kubeContext string) string {
	host, port, _ := net.SplitHostPort(listen)
	first, rest, _ := strings.Cut(contract.CorefileStanza, "\n")
	block := first + "\n    kubeconfig " + kubeconfig + " " + kubeContext + "\n" + rest
	return fmt.Sprintf(".:%s {\n    bind %s\n    errors\n%s\n}\n", port, host, indent(block, "    "))
}

func indent(s, by string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n")
}

// CoreDNS is a real CoreDNS (bin/coredns, built from its module) serving
// one cluster's DNS.
type CoreDNS struct {
	// Addr is host:port of its UDP and TCP listener.
	Addr string
	proc *Process
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// StartCoreDNS runs CoreDNS for c with ClustersetCorefile, and waits until
// it answers the MCS version record. It stops with the environment's
// processes (the returned Stop stops it sooner).
func (c *Cluster) StartCoreDNS(ctx context.Context) (*CoreDNS, error) {
	return c.StartCoreDNSAs(ctx, c.Kubeconfig, c.Name)
}

// StartCoreDNSAs runs CoreDNS as the credentials of kubeContext in kubeconfig
// (a cluster DNS's service account, to test the RBAC it is given).
func (c *Cluster) StartCoreDNSAs(ctx context.Context, kubeconfig, kubeContext string) (*CoreDNS, error) {
	bin := filepath.Join(c.bins, "coredns")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("testenv: no coredns in %s (hack/build-tools.sh builds it): %w", c.bins, err)
	}
	// Inside a cluster's own network namespace the usual port is free; on
	// the shared host network one must be found.
	port := 53
	if len(c.opts.Wrap) == 0 {
		ports, err := freePorts(c.opts.Host, 1)
		if err != nil {
			return nil, err
		}
		port = ports[0]
	}
	addr := net.JoinHostPort(c.opts.Host, strconv.Itoa(port))
	conf := filepath.Join(c.Dir, "Corefile")
	if err := os.WriteFile(conf, []byte(ClustersetCorefile(addr, kubeconfig, kubeContext)), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: Corefile: %w", err)
	}
	p, err := startProcess(c.state, "coredns", filepath.Join(c.Dir, "coredns.log"), c.wrap(bin, "-conf", conf), nil)
	if err != nil {
		return nil, err
	}
	d := &CoreDNS{Addr: addr, proc: p, dial: c.opts.Dial}
	wctx, cancel := context.WithTimeout(ctx, CoreDNSReadyTimeout)
	defer cancel()
	for {
		txt, err := d.Resolver().LookupTXT(wctx, "dns-version.clusterset.local")
		if err == nil && len(txt) > 0 {
			return d, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("testenv: coredns exited: %s", p.Tail(20))
		case <-wctx.Done():
			p.Stop(time.Second)
			return nil, errors.Join(fmt.Errorf("testenv: coredns at %s never answered: %w", addr, wctx.Err()), err, errors.New(p.Tail(20)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Resolver is a Go resolver that asks this CoreDNS only.
func (d *CoreDNS) Resolver() *net.Resolver {
	dial := d.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, d.Addr)
	}}
}

// LogTail is the last n lines of CoreDNS's log, and whether it has exited:
// what a failing test shows of it.
func (d *CoreDNS) LogTail(n int) string {
	select {
	case <-d.proc.Done():
		return "(exited) " + d.proc.Tail(n)
	default:
		return d.proc.Tail(n)
	}
}

// Stop stops CoreDNS.
func (d *CoreDNS) Stop() { d.proc.Stop(5 * time.Second) }
