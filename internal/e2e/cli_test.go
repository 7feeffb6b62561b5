package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/cli"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
)

// The CLI as a user drives it, against clusters whose controllers and
// gateways run for real: link -> export -> links -> check -> unlink --wait
// -> nothing left. East imports from north; north's export is limited to
// east, so west (which also links north) must never see it.
func TestCLIFlow(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	kubeconfig, err := sb.ForwardAPIServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ferry := func(args ...string) string {
		t.Helper()
		out, errOut, err := cli.Run(ctx, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		if err != nil {
			t.Fatalf("ferry %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	// link: read north's gateway, apply the Link in east.
	var link ferryv1.Link
	if err := yaml.UnmarshalStrict([]byte(ferry("--context", "north", "link", "--cluster-name", "north")), &link); err != nil {
		t.Fatal(err)
	}
	if err := east.API.Client.Create(ctx, &link); err != nil {
		t.Fatal(err)
	}

	// export: a new Service in north, for east only.
	if _, err := north.Echo(ctx, ns, "api", 1); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(ferry("--context", "north", "-n", ns, "export", "svc/api", "--to", "east")))
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := east.Request(ctx, ns, "api-north", 80, "via cli")
		return err == nil && strings.HasPrefix(reply, "north/api-0:"), nil
	})
	if err != nil {
		t.Fatalf("east never reached api-north:\n%s", east.Controller.Tail(20))
	}

	// links shows the import.
	var links []struct {
		Name    string `json:"name"`
		Imports int    `json:"imports"`
	}
	raw := ferry("--context", "east", "links", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &links); err != nil {
		// Whatever the exact JSON shape, the Link and its count must be there.
		if !strings.Contains(raw, `"north"`) {
			t.Fatalf("ferry links -o json does not mention north:\n%s", raw)
		}
	}
	t.Logf("ferry --context east links:\n%s", ferry("--context", "east", "links"))

	// check passes on east.
	out := ferry("--context", "east", "check", "--wait", "30s")
	if !strings.Contains(out, "all checks passed") {
		t.Fatalf("ferry check on east:\n%s", out)
	}

	// version reads what the daemons' pods run from their ferry_build_info,
	// through the same pod proxy: the commit that image tags cannot tell.
	var ver struct {
		Server struct {
			Controller, Gateway *struct{ Version, Commit, Source string }
		} `json:"server"`
		Skew struct {
			Known   bool
			Message string
		} `json:"skew"`
		Note string `json:"note"`
	}
	raw = ferry("--context", "east", "version", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &ver); err != nil {
		t.Fatalf("ferry version -o json: %v\n%s", err, raw)
	}
	ctrl, gwv := ver.Server.Controller, ver.Server.Gateway
	if ctrl == nil || gwv == nil {
		t.Fatalf("ferry version: no controller or gateway:\n%s", raw)
	}
	// What each daemon serves on its own admin port, read directly.
	for _, c := range []struct {
		name   string
		got    *struct{ Version, Commit, Source string }
		scrape func(context.Context) (string, error)
	}{{"controller", ctrl, east.ControllerMetrics}, {"gateway", gwv, east.GatewayMetrics}} {
		text, err := c.scrape(ctx)
		if err != nil {
			t.Fatal(err)
		}
		info := regexp.MustCompile(`(?m)^ferry_build_info\{.*\} 1$`).FindString(text)
		want := fmt.Sprintf(`revision=%q,version=%q`, c.got.Commit, c.got.Version)
		if c.got.Source != "metrics" || c.got.Commit == "" || !strings.Contains(info, want) {
			t.Errorf("ferry version: %s %+v (note: %s); the daemon serves %q", c.name, *c.got, ver.Note, info)
		}
	}
	t.Logf("ferry --context east version:\n%s", ferry("--context", "east", "version"))

	// gateways shows the remote alive, with live figures read from the
	// daemons' pods through the API server's pod proxy.
	var gw struct {
		Remotes []struct {
			Link, Alive, ProbeLatencyP50, ProbeLatencyP99, Tunnels, Streams string
		} `json:"remotes"`
		Note string `json:"note"`
	}
	raw = ferry("--context", "east", "gateways", "-o", "json")
	if err := json.Unmarshal([]byte(raw), &gw); err != nil {
		t.Fatalf("ferry gateways -o json: %v\n%s", err, raw)
	}
	found := false
	for _, r := range gw.Remotes {
		if r.Link != "north" {
			continue
		}
		found = true
		if r.Alive != "True" || r.ProbeLatencyP50 == "-" || r.Tunnels == "-" || r.Tunnels == "0" || r.Streams == "-" || r.Streams == "0" {
			t.Errorf("ferry gateways, remote north: %+v (note: %s)", r, gw.Note)
		}
	}
	if !found {
		t.Fatalf("ferry gateways does not list north:\n%s", raw)
	}
	t.Logf("ferry --context east gateways:\n%s", ferry("--context", "east", "gateways"))

	// The export is limited to east: west, which links north too, never has it.
	var svc corev1.Service
	if err := west.API.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "api-north"}, &svc); err == nil {
		t.Fatal("west imported api-north although north exported it to east only")
	}

	// unlink --wait removes the Link and everything it owned.
	t.Log(strings.TrimSpace(ferry("--context", "east", "unlink", "--cluster-name", "north", "--wait", "--timeout", "60s")))
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	owned := client.MatchingLabels{contract.LabelLink: "north"}
	if err := east.API.Client.List(ctx, &svcs, owned); err != nil {
		t.Fatal(err)
	}
	if err := east.API.Client.List(ctx, &slices, owned); err != nil {
		t.Fatal(err)
	}
	if n := len(svcs.Items) + len(slices.Items); n != 0 {
		t.Fatalf("%d objects of Link north left in east after unlink --wait", n)
	}
	if err := east.API.Client.Get(ctx, client.ObjectKey{Namespace: "ferry-system", Name: "north"}, &link); err == nil {
		t.Fatal("Link north still exists after unlink --wait")
	}
}
