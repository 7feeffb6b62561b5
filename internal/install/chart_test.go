package install

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

const chartPath = "../../" + ChartDir

// TestChartUpToDate fails when charts/ferry is not what the renderer
// generates: the chart and `ferry install` must not drift.
func TestChartUpToDate(t *testing.T) {
	chartYAML, err := os.ReadFile(filepath.Join(chartPath, "Chart.yaml"))
	if err != nil {
		t.Fatalf("%v (run go run ./hack/genchart)", err)
	}
	appVersion, err := ChartAppVersion(chartYAML)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Chart(appVersion)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir(chartPath, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartPath, p)
		got[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s/%s is missing: run go run ./hack/genchart", ChartDir, name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s/%s is stale: run go run ./hack/genchart (-committed +rendered):\n%s", ChartDir, name, cmp.Diff(string(w), string(g)))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is not generated: remove it or generate it", ChartDir, name)
		}
	}
}

// helmFuncs are the Sprig functions the generated templates use, with
// Helm's semantics. The templates must use nothing else, which
// TestChartRendersLikeInstall enforces by parsing them with only these.
var helmFuncs = template.FuncMap{
	"required": func(msg string, v any) (any, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	},
	"b64enc": func(s any) string { return base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(s))) },
	"quote":  func(s any) string { return fmt.Sprintf("%q", fmt.Sprint(s)) },
	// Sprig's split: a map of "_0", "_1", ... to the parts.
	"split": func(sep string, s any) map[string]string {
		out := map[string]string{}
		for i, p := range strings.Split(fmt.Sprint(s), sep) {
			out[fmt.Sprintf("_%d", i)] = p
		}
		return out
	},
	"int": func(v any) (int, error) { return strconv.Atoi(fmt.Sprint(v)) },
	"default": func(def, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
}

// helmTemplate does what `helm template` does with the chart's templates:
// execute each with .Values, split on "---", drop empty documents.
func helmTemplate(t *testing.T, values map[string]any) ([]map[string]any, error) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(chartPath, "templates", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no templates in %s: %v", chartPath, err)
	}
	sort.Strings(paths)
	var docs []map[string]any
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := template.New(filepath.Base(p)).Funcs(helmFuncs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, map[string]any{"Values": values}); err != nil {
			return nil, err
		}
		for _, doc := range strings.Split(out.String(), "\n---") {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s renders invalid YAML: %v\n%s", p, err, doc)
			}
			if len(m) > 0 {
				docs = append(docs, m)
			}
		}
	}
	return docs, nil
}

// chartValues are the chart values equivalent to o, starting from the
// chart's values.yaml as Helm does.
func chartValues(t *testing.T, o Options) map[string]any {
	t.Helper()
	s, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartPath, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	set := func(path string, val any) {
		m := v
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		m[keys[len(keys)-1]] = val
	}
	set("clusterName", s.clusterName)
	set("meshDomain", s.meshDomain)
	if o.Registry != "" {
		set("image.registry", o.Registry)
	}
	set("image.tag", o.ImageTag)
	set("controller.image", o.ControllerImage)
	set("gateway.image", o.GatewayImage)
	set("controller.replicas", float64(s.controllerReplicas))
	set("gateway.replicas", float64(s.gatewayReplicas))
	set("gateway.serviceType", s.serviceType)
	set("egressPorts", s.egressPorts)
	set("identity.issuerCert", string(o.IssuerCertPEM))
	set("identity.issuerKey", string(o.IssuerKeyPEM))
	set("identity.trustBundle", string(o.TrustBundlePEM))
	return v
}

// TestChartRendersLikeInstall renders the chart with the values of every
// golden case and compares the objects with Render's; the CRDs in crds/
// must be Render's CRDs.
func TestChartRendersLikeInstall(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(t)
			c.mod(&o)
			values := chartValues(t, o)
			validateValues(t, values)
			got, err := helmTemplate(t, values)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Unstructured(withoutCRDs(objs))
			if err != nil {
				t.Fatal(err)
			}
			compareObjects(t, got, want)

			values["installNamespace"] = false
			got, err = helmTemplate(t, values)
			if err != nil {
				t.Fatal(err)
			}
			compareObjects(t, got, want[1:])
		})
	}
	crdObjs, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Unstructured(crdObjs)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, o := range crdObjs {
		b, err := os.ReadFile(filepath.Join(chartPath, "crds", o.GetName()+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "status")
		dropNullTimestamps(m)
		got = append(got, m)
	}
	compareObjects(t, got, want)
}

func compareObjects(t *testing.T, got, want []map[string]any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the chart and the install render different objects (-install +chart):\n%s", diff)
	}
}

func TestChartRequiresValues(t *testing.T) {
	values := chartValues(t, testOptions(t))
	values["clusterName"] = ""
	if _, err := helmTemplate(t, values); err == nil || !strings.Contains(err.Error(), "clusterName is required") {
		t.Errorf("no clusterName: %v", err)
	}
	values = chartValues(t, testOptions(t))
	values["identity"].(map[string]any)["issuerKey"] = ""
	if _, err := helmTemplate(t, values); err == nil || !strings.Contains(err.Error(), "identity.issuerKey is required") {
		t.Errorf("no issuer key: %v", err)
	}
}

// validateValues checks values against values.schema.json for the parts of
// JSON Schema it uses (type, pattern, enum, minimum, properties), so a
// schema that would refuse valid options fails here rather than in Helm.
func validateValues(t *testing.T, values map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartPath, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	if err := validate("", schema, values); err != nil {
		t.Errorf("values.schema.json refuses valid values: %v", err)
	}
}

func validate(path string, schema map[string]any, v any) error {
	if props, ok := schema["properties"].(map[string]any); ok {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: not an object", path)
		}
		for k, val := range m {
			sub, ok := props[k].(map[string]any)
			if !ok {
				return fmt.Errorf("%s.%s: not in the schema", path, k)
			}
			if err := validate(path+"."+k, sub, val); err != nil {
				return err
			}
		}
	}
	if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(fmt.Sprint(v)) {
		return fmt.Errorf("%s: %q does not match %s", path, v, p)
	}
	if enum, ok := schema["enum"].([]any); ok && !contains(enum, v) {
		return fmt.Errorf("%s: %v not in %v", path, v, enum)
	}
	if min, ok := schema["minimum"].(float64); ok && v.(float64) < min {
		return fmt.Errorf("%s: %v below %v", path, v, min)
	}
	return nil
}

func contains(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
