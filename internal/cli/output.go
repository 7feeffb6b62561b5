package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"
)

// Output formats. Every command that prints objects or state takes
// -o/--output with some of these; the template formats take their
// template after "=", as kubectl's do (-o jsonpath='{.name}').
const (
	outputTable = "table"
	outputWide  = "wide"
	outputYAML  = "yaml"
	outputJSON  = "json"
	outputName  = "name"

	outputJSONPath       = "jsonpath"
	outputJSONPathFile   = "jsonpath-file"
	outputJSONPathAsJSON = "jsonpath-as-json"
	outputGoTemplate     = "go-template"
	outputGoTemplateFile = "go-template-file"
)

// templateFormats read the same structure that -o json prints, so a script
// can move between them; every command with json takes them all.
var templateFormats = []string{outputJSONPath, outputJSONPathFile, outputJSONPathAsJSON, outputGoTemplate, outputGoTemplateFile}

// structuredFormats are json, yaml and the template formats.
var structuredFormats = append([]string{outputJSON, outputYAML}, templateFormats...)

// addOutputFlag registers -o/--output with a default, the allowed formats
// and shell completion for them. A format outside allowed, or a template
// that does not parse, is refused while flags are parsed, before the
// command runs.
func addOutputFlag(cmd *cobra.Command, def string, allowed ...string) *string {
	f := &outputFlag{value: def, allowed: allowed}
	cmd.Flags().VarP(f, "output", "o", "output format: "+strings.Join(formatUsages(allowed), "|"))
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, a := range allowed {
			if slices.Contains(templateFormats, a) {
				a += "="
			}
			out = append(out, a)
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	return &f.value
}

// outputFlag is a pflag.Value that accepts only its allowed formats.
type outputFlag struct {
	value   string
	allowed []string
}

func (f *outputFlag) String() string { return f.value }
func (f *outputFlag) Type() string   { return "format" }
func (f *outputFlag) Set(s string) error {
	name, arg, hasArg := strings.Cut(s, "=")
	if !slices.Contains(f.allowed, name) || (hasArg && !slices.Contains(templateFormats, name)) {
		return fmt.Errorf("unknown output format %q: use %s", s, orList(formatUsages(f.allowed)))
	}
	if slices.Contains(templateFormats, name) {
		if arg == "" {
			return fmt.Errorf("-o %s needs a template after \"=\", e.g. %s", name, templateExample(name))
		}
		// Parse now: a template error is a usage error, and should come
		// before the command changes anything.
		if err := checkTemplate(name, arg); err != nil {
			return err
		}
	}
	f.value = s
	return nil
}

// formatUsages shows template formats with what they take.
func formatUsages(formats []string) []string {
	out := make([]string, 0, len(formats))
	for _, f := range formats {
		switch f {
		case outputJSONPathFile, outputGoTemplateFile:
			f += "=FILE"
		case outputJSONPath, outputJSONPathAsJSON, outputGoTemplate:
			f += "=TEMPLATE"
		}
		out = append(out, f)
	}
	return out
}

func templateExample(format string) string {
	switch format {
	case outputJSONPathFile, outputGoTemplateFile:
		return "-o " + format + "=my.tmpl"
	case outputGoTemplate:
		return `-o go-template='{{.name}}'`
	}
	return "-o " + format + "='{.name}'"
}

// orList says "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// printout is what a command prints, in each form -o can ask for. A nil form
// is one the command does not offer (addOutputFlag keeps users from asking).
type printout struct {
	// value is printed by json and yaml, and read by the templates.
	value any
	// table is the default, human view; wide adds the columns it hides.
	table, wide func(io.Writer) error
	// names are the objects the command shows or changed, for -o name:
	// each needs apiVersion, kind and name.
	names []runtime.Object
}

func (o printout) print(w io.Writer, format string) error {
	name, arg, _ := strings.Cut(format, "=")
	switch {
	case name == outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(o.value)
	case name == outputYAML:
		b, err := yaml.Marshal(o.value)
		if err != nil {
			return fmt.Errorf("yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	case slices.Contains(templateFormats, name):
		return printTemplate(w, name, arg, o.value)
	case name == outputName && o.names != nil:
		p := &printers.NamePrinter{}
		for _, obj := range o.names {
			if err := p.PrintObj(obj, w); err != nil {
				return err
			}
		}
		return nil
	case name == outputWide && o.wide != nil:
		return o.wide(w)
	case (name == outputTable || name == "") && o.table != nil:
		return o.table(w)
	}
	return fmt.Errorf("output format %q is not supported here", format)
}

// printValue writes v as JSON, YAML or through a template, or calls table
// for the table format.
func printValue(w io.Writer, format string, v any, table func(io.Writer) error) error {
	return printout{value: v, table: table}.print(w, format)
}

// objectRef is an object as -o name prints it: kind.group/name.
func objectRef(gvk schema.GroupVersionKind, namespace, name string) runtime.Object {
	apiVersion, kind := gvk.ToAPIVersionAndKind()
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
	}
}

// printManifests writes Kubernetes objects for `kubectl apply|delete -f -`:
// YAML documents separated by "---", or one JSON v1 List (which the
// template formats read).
func printManifests(w io.Writer, format string, objs []map[string]any) error {
	name, _, _ := strings.Cut(format, "=")
	if name == outputJSON || slices.Contains(templateFormats, name) {
		return printValue(w, format, map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}, nil)
	}
	if format != outputYAML {
		return fmt.Errorf("manifests print as yaml or json, not %q", format)
	}
	for _, o := range objs {
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		if err := printValue(w, outputYAML, o, nil); err != nil {
			return err
		}
	}
	return nil
}

// printTable writes aligned columns, headers in capitals as kubectl does.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
