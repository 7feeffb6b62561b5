// Command ferry-gateway is a cluster's gateway: the mTLS ingress other
// clusters reach, the export feed, and the egress ports for mirrors. See
// internal/gatewayd.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/gatewayd"
	"ferry.dev/ferry/internal/version"
)

func main() {
	var o gatewayd.Options
	var kubeconfig, logLevel string
	fs := flag.NewFlagSet("ferry-gateway", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&o.ClusterName, "cluster-name", "", "this cluster's name (a DNS label), as in its SPIFFE trust domain")
	fs.StringVar(&o.MeshDomain, "mesh-domain", contract.DefaultMeshDomain, "the mesh's domain; trust domains are <cluster>.<mesh-domain>")
	fs.StringVar(&o.Namespace, "namespace", contract.SystemNamespace, "namespace of Ferry's Links and certificate Secret")
	fs.StringVar(&o.CertSecret, "tls-secret", contract.GatewayTLSSecret, "Secret holding the gateway's certificate, written by ferry-controller")
	fs.StringVar(&o.ListenAddr, "ingress-addr", gatewayd.DefaultListenAddr, "ingress address for remote gateways and controllers (mTLS)")
	fs.StringVar(&o.AdminAddr, "admin-addr", gatewayd.DefaultAdminAddr, "address of /live, /ready and /metrics")
	fs.StringVar(&o.PprofAddr, "pprof-addr", "", "address of /debug/pprof/, e.g. 127.0.0.1:6061; empty (the default) serves no profiles")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of this cluster; empty means in-cluster")
	o.EgressPorts, o.ClustersetPorts = contract.DefaultEgressRange(), contract.DefaultClustersetRange()
	fs.Var(&o.EgressPorts, "egress-port-range", "ports the controller allocates to mirrors, min-max; with --clusterset-port-range, the only ports opened for egress")
	fs.Var(&o.ClustersetPorts, "clusterset-port-range", "ports the controller allocates to clusterset Services, min-max; disjoint from --egress-port-range")
	callers := string(gateway.CallerEnforce)
	fs.StringVar(&callers, "egress-callers", callers, "enforce: refuse a caller that may not use an egress port (docs/contracts.md, \"Egress callers\"); audit: only count it")
	fs.Func("egress-host-callers", "comma-separated CIDRs of callers that are no pod (nodes, hostNetwork pods, outside hosts) but may use every egress port; default none", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			o.EgressHostCallers = append(o.EgressHostCallers, p)
		}
		return nil
	})
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version.String("ferry-gateway"))
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferry-gateway: --log-level: %v\n", err)
		os.Exit(2)
	}
	o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.EgressHost = os.Getenv("POD_IP")
	o.EgressCallers = gateway.CallerMode(callers)
	var err error
	if kubeconfig == "" {
		o.RestConfig, err = rest.InClusterConfig()
	} else {
		o.RestConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry-gateway: invalid configuration: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := gatewayd.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "ferry-gateway: %v\n", err)
		if errors.Is(err, gatewayd.ErrInvalidOptions) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
