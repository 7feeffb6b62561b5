package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/cli"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// Options configure Run.
type Options struct {
	// Keep leaves the clusters running and opens a shell to explore them
	// (make sandbox); without it the demo stops everything at the end.
	Keep bool
	Out  io.Writer
}

const ns = "demo"

// Run runs the demo until it is done (or, with Keep, until the shell exits).
func Run(ctx context.Context, o Options) error {
	out := o.Out
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n==> "+format+"\n", a...) }
	say := func(format string, a ...any) { fmt.Fprintf(out, "    "+format+"\n", a...) }

	step("Starting three independent clusters: east, west, north (the first run builds them)")
	start := time.Now()
	sb, err := sandbox.Start(ctx, sandbox.Options{Clusters: []string{"east", "west", "north"}, Logf: say})
	if err != nil {
		return err
	}
	defer sb.Stop()
	say("ready in %s; each cluster has its own etcd, kube-apiserver, ferry-controller and ferry-gateway", time.Since(start).Round(time.Second))
	kubeconfig, err := sb.ForwardAPIServers(ctx)
	if err != nil {
		return err
	}
	ferry := func(args ...string) (string, error) { return runFerry(ctx, kubeconfig, args...) }
	east, west := sb.Cluster("east"), sb.Cluster("west")

	step("Deploying in east an echo workload (2 pods) and a StatefulSet web (3 pods, headless), and exporting both")
	for _, c := range sb.Clusters {
		if err := c.API.EnsureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	echo, err := east.Echo(ctx, ns, "echo", 2)
	if err != nil {
		return err
	}
	defer echo.Stop()
	web, err := east.StatefulSet(ctx, ns, "web", 3)
	if err != nil {
		return err
	}
	defer web.Stop()
	for _, svc := range []string{"svc/echo", "svc/web"} {
		if err := show(out, ferry, "--context", "east", "-n", ns, "export", svc); err != nil {
			return err
		}
	}

	step("Linking west to east: ferry --context east link --cluster-name east | kubectl --context west apply -f -")
	linkYAML, err := ferry("--context", "east", "link", "--cluster-name", "east")
	if err != nil {
		return err
	}
	var link ferryv1.Link
	if err := yaml.UnmarshalStrict([]byte(linkYAML), &link); err != nil {
		return fmt.Errorf("ferry link printed something that is not a Link: %w", err)
	}
	if err := west.API.Client.Create(ctx, &link); err != nil {
		return fmt.Errorf("applying the Link in west: %w", err)
	}
	say("Link east in west: gateway %s, identity %s", strings.Join(link.Spec.GatewayAddresses, ","), link.Spec.GatewayIdentity)
	say("(no API server address or credential: only east's gateway is reachable from west)")

	clusterset := "echo." + ns + ".svc.clusterset.local"
	web1 := "web-1.east.web." + ns + ".svc.clusterset.local"
	step("Waiting for west to import them: %s, and each web pod by name", clusterset)
	for _, name := range []string{clusterset, web1} {
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := west.RequestName(ctx, name, 80, "ping")
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("%s never became reachable in west (logs: %s)", name, sb.Dir())
		}
	}

	step("Sending requests from a pod in west, by name, through west's CoreDNS")
	for i := 1; i <= 4; i++ {
		reply, err := west.RequestName(ctx, clusterset, 80, fmt.Sprintf("hello #%d from west", i))
		if err != nil {
			return err
		}
		say("%-28s <- %s", fmt.Sprintf("hello #%d from west", i), reply)
	}
	say("%s: every reply names the east pod that answered: west pod -> west gateway -> mTLS tunnel -> east gateway -> east pod", clusterset)
	for i := 1; i <= 2; i++ {
		reply, err := west.RequestName(ctx, web1, 80, fmt.Sprintf("web-1, #%d", i))
		if err != nil {
			return err
		}
		say("%-28s <- %s", fmt.Sprintf("web-1, #%d", i), reply)
	}
	say("%s: one StatefulSet pod, by name, every time", web1)

	step("ferry --context west links")
	if err := show(out, ferry, "--context", "west", "links"); err != nil {
		return err
	}
	step("ferry --context west gateways")
	if err := show(out, ferry, "--context", "west", "gateways"); err != nil {
		return err
	}
	step("ferry --context west check")
	if err := show(out, ferry, "--context", "west", "check", "--wait", "30s"); err != nil {
		return err
	}
	step("A few gateway metrics")
	if err := showMetrics(ctx, out, west, east); err != nil {
		return err
	}

	if o.Keep {
		return explore(ctx, out, sb, kubeconfig)
	}
	step("Stopping the clusters")
	return nil
}

// runFerry runs a ferry command in-process, as the CLI binary would.
func runFerry(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	stdout, stderr, err := cli.Run(ctx, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if err != nil {
		return stdout, fmt.Errorf("ferry %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout, nil
}

func show(out io.Writer, ferry func(...string) (string, error), args ...string) error {
	text, err := ferry(args...)
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(out, "    "+line)
	}
	return err
}

func showMetrics(ctx context.Context, out io.Writer, west, east *sandbox.Cluster) error {
	for _, m := range []struct {
		c      *sandbox.Cluster
		family string
		what   string
	}{
		{west, "ferry_gateway_tunnel_sessions", "west egress: pooled mTLS sessions to east"},
		{west, "ferry_gateway_egress_streams_opened_total", "west egress: client connections carried to east"},
		{west, "ferry_gateway_egress_bytes_total", "west egress: bytes relayed"},
		{east, "ferry_gateway_ingress_streams_opened_total", "east ingress: streams authorized and served"},
		{east, "ferry_gateway_ingress_rejected_total", "east ingress: streams refused"},
		{east, "ferry_feed_bytes_sent_total", "east feed: bytes sent to importers"},
	} {
		text, err := m.c.GatewayMetrics(ctx)
		if err != nil {
			return err
		}
		v, err := sandbox.MetricSum(text, m.family, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "    %-48s %8.0f   (%s)\n", m.what, v, m.family)
	}
	return nil
}

// explore opens a shell that can reach the clusters, for `make sandbox`.
func explore(ctx context.Context, out io.Writer, sb *sandbox.Sandbox, kubeconfig string) error {
	fmt.Fprintf(out, "\n==> The clusters keep running until you exit the shell below.\n")
	fmt.Fprintf(out, "    KUBECONFIG=%s (contexts: east, west, north)\n", kubeconfig)
	fmt.Fprintf(out, "    try:  ferry --context west links\n          ferry --context west check\n          ferry --context north link --cluster-name north > /tmp/north.yaml\n")
	fmt.Fprintf(out, "    logs: %s\n", sb.Dir())
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.CommandContext(ctx, shell)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PS1=(ferry-sandbox) $ ")
	if bin, err := binDir(); err == nil {
		cmd.Env = append(cmd.Env, "PATH="+bin+":"+os.Getenv("PATH"))
	}
	_ = cmd.Run()
	fmt.Fprintln(out, "\n==> Stopping the clusters")
	return nil
}

func binDir() (string, error) {
	d, err := sandbox.EnsureDaemons()
	return d, err
}
