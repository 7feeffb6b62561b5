package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestPrintValueFormats(t *testing.T) {
	v := map[string]any{"name": "east", "ready": true}
	table := func(w io.Writer) error {
		return printTable(w, []string{"name", "ready"}, [][]string{{"east", "true"}, {"a-much-longer-name", "false"}})
	}
	for format, want := range map[string]string{
		outputJSON:  "{\n  \"name\": \"east\",\n  \"ready\": true\n}\n",
		outputYAML:  "name: east\nready: true\n",
		outputTable: "NAME                 READY\neast                 true\na-much-longer-name   false\n",
	} {
		var b bytes.Buffer
		if err := printValue(&b, format, v, table); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if b.String() != want {
			t.Errorf("%s:\n got %q\nwant %q", format, b.String(), want)
		}
	}
	if err := printValue(&bytes.Buffer{}, outputTable, v, nil); err == nil {
		t.Error("table without a table printer succeeded")
	}
}

func TestOutputFlagRefusesUnknownFormats(t *testing.T) {
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	format := addOutputFlag(cmd, outputTable, outputTable, outputJSON)
	cmd.SetArgs([]string{"-o", "yaml"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), `unknown output format "yaml": use table or json`) {
		t.Errorf("-o yaml where only table|json: %v", err)
	}
	if *format != outputTable {
		t.Errorf("format changed to %q", *format)
	}
}

// TestPrintoutFormats: every format of one printout, from one value. The
// templates read the value as -o json prints it, lists included.
func TestPrintoutFormats(t *testing.T) {
	rows := []map[string]any{{"name": "east", "imports": 3}, {"name": "north", "imports": 1}}
	tmpl := filepath.Join(t.TempDir(), "t.tmpl")
	if err := os.WriteFile(tmpl, []byte(`{range [*]}{.name}={.imports};{end}`), 0o644); err != nil {
		t.Fatal(err)
	}
	gotmpl := filepath.Join(t.TempDir(), "t.gotmpl")
	if err := os.WriteFile(gotmpl, []byte(`{{range .}}{{.name}} {{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := printout{
		value: rows,
		table: func(w io.Writer) error { _, err := io.WriteString(w, "TABLE\n"); return err },
		wide:  func(w io.Writer) error { _, err := io.WriteString(w, "WIDE\n"); return err },
		names: []runtime.Object{
			objectRef(schema.GroupVersionKind{Group: "ferry.dev", Version: "v1alpha1", Kind: "Link"}, "ferry-system", "east"),
			objectRef(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, "ferry-system", "ferry-gateway"),
		},
	}
	for _, tc := range []struct{ format, want string }{
		{"", "TABLE\n"},
		{outputTable, "TABLE\n"},
		{outputWide, "WIDE\n"},
		{outputName, "link.ferry.dev/east\nservice/ferry-gateway\n"},
		{outputJSON, "[\n  {\n    \"imports\": 3,\n    \"name\": \"east\"\n  },\n  {\n    \"imports\": 1,\n    \"name\": \"north\"\n  }\n]\n"},
		{outputYAML, "- imports: 3\n  name: east\n- imports: 1\n  name: north\n"},
		{`jsonpath={[*].name}`, "east north"},
		{`jsonpath={range [*]}{.name}{"\t"}{.imports}{"\n"}{end}`, "east\t3\nnorth\t1\n"},
		{`jsonpath={[0].missing}`, ""}, // kubectl's default: missing keys print nothing
		{`jsonpath-as-json={[*].imports}`, "[\n    3,\n    1\n]\n"},
		{"jsonpath-file=" + tmpl, "east=3;north=1;"},
		{`go-template={{range .}}{{.name}}:{{.imports}} {{end}}`, "east:3 north:1 "},
		{`go-template={{if exists (index . 0) "name"}}yes{{end}}`, "yes"},
		{"go-template-file=" + gotmpl, "east north "},
	} {
		var b bytes.Buffer
		if err := p.print(&b, tc.format); err != nil {
			t.Errorf("-o %s: %v", tc.format, err)
			continue
		}
		if b.String() != tc.want {
			t.Errorf("-o %s:\n got %q\nwant %q", tc.format, b.String(), tc.want)
		}
	}
	// A form the command does not offer is an error, never empty output.
	for _, format := range []string{outputWide, outputName} {
		if err := (printout{value: rows, table: p.table}).print(&bytes.Buffer{}, format); err == nil {
			t.Errorf("-o %s without that form succeeded", format)
		}
	}
	var b bytes.Buffer
	err := p.print(&b, `jsonpath={[5].name}`)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "array index out of bounds: index 5, length 2 (compare the template with the fields of -o json)") {
		t.Errorf("jsonpath that does not fit: %v", err)
	}
}

// TestOutputFlagErrors: the flag refuses, before the command runs, what the
// command does not print and templates that do not parse, saying what it
// takes instead.
func TestOutputFlagErrors(t *testing.T) {
	allowed := append([]string{outputTable, outputWide, outputName}, structuredFormats...)
	for _, tc := range []struct {
		allowed   []string
		arg, want string
	}{
		{[]string{outputTable, outputJSON}, "yaml", `unknown output format "yaml": use table or json`},
		{[]string{outputTable, outputJSON, outputYAML}, "wide", `unknown output format "wide": use table, json or yaml`},
		{[]string{outputTable, outputJSON}, "jsonpath={.a}", `unknown output format "jsonpath={.a}": use table or json`},
		{allowed, "custom-columns=NAME:.name", `use table, wide, name, json, yaml, jsonpath=TEMPLATE, jsonpath-file=FILE, jsonpath-as-json=TEMPLATE, go-template=TEMPLATE or go-template-file=FILE`},
		{allowed, "json=x", `unknown output format "json=x"`},
		{allowed, "jsonpath", `-o jsonpath needs a template after "=", e.g. -o jsonpath='{.name}'`},
		{allowed, "jsonpath={.a", `-o jsonpath: unclosed action (e.g. -o jsonpath='{.name}')`},
		{allowed, "go-template={{.a", `-o go-template: template: output:1: unclosed action`},
		{allowed, "jsonpath-file=/nonexistent/t", `-o jsonpath-file: open /nonexistent/t: no such file or directory`},
	} {
		cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { t.Errorf("-o %s: command ran", tc.arg); return nil }}
		format := addOutputFlag(cmd, outputTable, tc.allowed...)
		cmd.SetArgs([]string{"-o", tc.arg})
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("-o %s: %v\nwant one line containing %q", tc.arg, err, tc.want)
		}
		if *format != outputTable {
			t.Errorf("-o %s: format changed to %q", tc.arg, *format)
		}
	}
}
