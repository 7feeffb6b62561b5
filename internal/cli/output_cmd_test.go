package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// TestOutputFormatsOnCommands: each command's -o forms, against the shared
// clusters. Wide tables are goldens; the default tables keep theirs
// (TestLinksTable, TestGatewaysTable, TestCheckHealthy).
func TestOutputFormatsOnCommands(t *testing.T) {
	installEast(t)
	westLinks(t)
	healthyNorth(t)
	env := shared.Get(t)
	if _, err := env.Cluster(exporter).CreateBackend(context.Background(), testenv.Backend{Namespace: "outfmt", Name: "cart"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cluster string
		args    []string
		want    string // exact stdout, or
		golden  string // a golden file
	}{
		{"links wide", importer, []string{"links", "-o", "wide"}, "", "links-wide.txt"},
		{"links name", importer, []string{"links", "-o", "name"}, "link.ferry.dev/east\nlink.ferry.dev/north\nlink.ferry.dev/south\n", ""},
		{"links jsonpath", importer, []string{"links", "-o", `jsonpath={range [*]}{.name}{" "}{.connected}{" "}{.gatewayAddresses[*]}{"\n"}{end}`},
			"east True 198.18.0.10:4143 198.18.0.12:4143\nnorth False 198.18.2.1:4143\nsouth Unknown 198.18.2.1:4143\n", ""},
		{"links go-template", importer, []string{"links", "-o", `go-template={{range .}}{{.cluster}}:{{.importedServices}} {{end}}`}, "east:3 north:1 south:0 ", ""},
		{"no links, name", exporter, []string{"links", "-o", "name"}, "", ""},
		{"gateways wide, importer", importer, []string{"gateways", "-o", "wide"}, "", "gateways-importer-wide.txt"},
		{"gateways wide, exporter", exporter, []string{"gateways", "-o", "wide"}, "", "gateways-exporter-wide.txt"},
		{"gateways name", importer, []string{"gateways", "-o", "name"}, "link.ferry.dev/east\nlink.ferry.dev/north\nlink.ferry.dev/south\n", ""},
		{"gateways name, exporter", exporter, []string{"gateways", "-o", "name"}, "service/ferry-gateway\n", ""},
		{"gateways jsonpath", exporter, []string{"gateways", "-o", "jsonpath={.local.readyEndpoints}/{.local.endpoints} {.local.type}"}, "2/2 LoadBalancer", ""},
		{"link name", exporter, []string{"link", "--cluster-name", exporter, "-o", "name"}, "link.ferry.dev/east\n", ""},
		{"link jsonpath", exporter, []string{"link", "--cluster-name", exporter, "-o", "jsonpath={.kind} {.spec.gatewayIdentity}"},
			"Link spiffe://east.ferry.local/ns/ferry-system/sa/ferry-gateway", ""},
		{"check jsonpath", checked, []string{"check", "-o", `jsonpath={.passed} {.checks[0].name}`}, "true Kubernetes API is reachable", ""},
		{"export name", exporter, []string{"export", "svc/cart", "-n", "outfmt", "-o", "name"}, "serviceexport.multicluster.x-k8s.io/cart\n", ""},
		{"export again, jsonpath", exporter, []string{"export", "svc/cart", "-n", "outfmt", "--to", "west", "-o",
			`jsonpath={.apiVersion} {.kind} {.metadata.namespace}/{.metadata.name} {.metadata.annotations.ferry\.dev/allowed-clusters}`},
			"multicluster.x-k8s.io/v1beta1 ServiceExport outfmt/cart west", ""},
		{"unexport name", exporter, []string{"unexport", "svc/cart", "-n", "outfmt", "-o", "name"}, "serviceexport.multicluster.x-k8s.io/cart\n", ""},
		{"unexport gone, name", exporter, []string{"unexport", "svc/cart", "-n", "outfmt", "--ignore-not-found", "-o", "name"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mustFerryOn(t, tc.cluster, tc.args...)
			if tc.golden != "" {
				golden(t, tc.golden, rfc3339.ReplaceAllString(out, "YYYY-MM-DDThh:mm:ssZ"))
			} else if out != tc.want {
				t.Errorf("ferry %s:\n got %q\nwant %q", strings.Join(tc.args, " "), out, tc.want)
			}
		})
	}
}

// rfc3339 finds the wide tables' times, which move with the clock; the
// placeholder is as long, so the columns stay as printed.
var rfc3339 = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// TestOutputFormatsRefused: a format a command does not print is a one-line
// error that lists the ones it does.
func TestOutputFormatsRefused(t *testing.T) {
	shared.Get(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "-o", "wide"}, `unknown output format "wide": use table, json, yaml, jsonpath=TEMPLATE, jsonpath-file=FILE, jsonpath-as-json=TEMPLATE, go-template=TEMPLATE or go-template-file=FILE`},
		{[]string{"check", "-o", "name"}, `unknown output format "name": use table, json, yaml`},
		{[]string{"unexport", "svc/cart", "-o", "json"}, `unknown output format "json": use name`},
		{[]string{"link", "--cluster-name", "east", "-o", "wide"}, `unknown output format "wide": use yaml, json, name, jsonpath=TEMPLATE`},
		{[]string{"links", "-o", "jsonpath"}, `-o jsonpath needs a template after "=", e.g. -o jsonpath='{.name}'`},
		{[]string{"links", "-o", "custom-columns=NAME:.name"}, `use table, wide, name, json, yaml, jsonpath=TEMPLATE`},
	} {
		_, _, err := ferryOn(t, importer, tc.args...)
		oneLine(t, err, tc.want)
	}
}

// TestExportJSONIsTheObject: export -o json prints the ServiceExport as
// written, with its kind, for kubectl and jq alike.
func TestExportJSONIsTheObject(t *testing.T) {
	env := shared.Get(t)
	if _, err := env.Cluster(exporter).CreateBackend(context.Background(), testenv.Backend{Namespace: "outjson", Name: "cart"}); err != nil {
		t.Fatal(err)
	}
	out := mustFerryOn(t, exporter, "export", "svc/cart", "-n", "outjson", "--to", "north", "-o", "json")
	var se map[string]any
	if err := json.Unmarshal([]byte(out), &se); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	md, _ := se["metadata"].(map[string]any)
	if se["kind"] != "ServiceExport" || se["apiVersion"] != "multicluster.x-k8s.io/v1beta1" || md["name"] != "cart" ||
		md["resourceVersion"] == nil || md["managedFields"] != nil {
		t.Errorf("export -o json:\n%s", out)
	}
	mustFerryOn(t, exporter, "unexport", "svc/cart", "-n", "outjson")
}
