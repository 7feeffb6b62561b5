// Command ferry-controller is Ferry's per-cluster controller daemon: the
// cluster's certificate issuer and the importer of every Link. It only
// parses flags; internal/controllerd does the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/controllerd"
	"ferry.dev/ferry/internal/version"
)

func main() {
	fs := flag.NewFlagSet("ferry-controller", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	var o controllerd.Options
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty means in-cluster")
	fs.StringVar(&o.ClusterName, "cluster-name", "", "this cluster's name, a DNS label (required)")
	fs.StringVar(&o.MeshDomain, "mesh-domain", contract.DefaultMeshDomain, "the mesh's domain; cluster c's trust domain is c.<mesh-domain>")
	o.EgressPorts, o.ClustersetPorts = contract.DefaultEgressRange(), contract.DefaultClustersetRange()
	fs.Var(&o.EgressPorts, "egress-port-range", "gateway ports to allocate to mirrors, min-max")
	fs.Var(&o.ClustersetPorts, "clusterset-port-range", "gateway ports to allocate to clusterset services, min-max, disjoint from --egress-port-range")
	fs.StringVar(&o.GatewayService, "gateway-service", controllerd.DefaultGatewayService, "the local gateway Service, namespace/name")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect a leader among replicas (Lease ferry-system/"+contract.LeaderElectionID+")")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", controllerd.DefaultAdminAddr, "address of /metrics; 0 turns it off")
	fs.StringVar(&o.HealthAddr, "health-addr", controllerd.DefaultAdminAddr, "address of /live and /ready; 0 turns them off")
	fs.StringVar(&o.PprofAddr, "pprof-addr", "", "address of /debug/pprof/, e.g. 127.0.0.1:6060; empty (the default) serves no profiles")
	fs.StringVar(&o.TLSDir, "tls-dir", "", "directory with the controller's own tls.crt, tls.key and ca.crt; empty: issue it from --issuer-secret")
	fs.StringVar(&o.IssuerSecret, "issuer-secret", contract.IssuerSecret, "Secret in ferry-system holding the cluster's issuer")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])
	o.PodName = os.Getenv("POD_NAME")
	if *showVersion {
		fmt.Println(version.String("ferry-controller"))
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferry-controller: --log-level: %v\n", err)
		os.Exit(2)
	}
	o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Logger.Info("ferry-controller", "version", version.String("ferry-controller"))
	if err := controllerd.Run(ctx, o); err != nil {
		if errors.Is(err, controllerd.ErrInvalidOptions) {
			fmt.Fprintf(os.Stderr, "ferry-controller: %v\n", err)
			os.Exit(2)
		}
		o.Logger.Error("ferry-controller stopped", "err", err)
		os.Exit(1)
	}
}
