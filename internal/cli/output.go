package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Output formats. Every command that prints objects or state takes
// -o/--output with some of these.
const (
	outputTable = "table"
	outputYAML  = "yaml"
	outputJSON  = "json"
)

// addOutputFlag registers -o/--output with a default, the allowed formats
// and shell completion for them. A format outside allowed is refused while
// flags are parsed, before the command runs.
func addOutputFlag(cmd *cobra.Command, def string, allowed ...string) *string {
	f := &outputFlag{value: def, allowed: allowed}
	cmd.Flags().VarP(f, "output", "o", "output format: "+strings.Join(allowed, "|"))
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allowed, cobra.ShellCompDirectiveNoFileComp
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
	if !slices.Contains(f.allowed, s) {
		return fmt.Errorf("unknown output format %q: use %s", s, strings.Join(f.allowed, " or "))
	}
	f.value = s
	return nil
}

// printValue writes v as JSON or YAML, or calls table for the table format.
func printValue(w io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case outputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case outputYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	case outputTable, "":
		if table != nil {
			return table(w)
		}
	}
	return fmt.Errorf("output format %q is not supported here", format)
}

// printManifests writes Kubernetes objects for `kubectl apply|delete -f -`:
// YAML documents separated by "---", or one JSON v1 List.
func printManifests(w io.Writer, format string, objs []map[string]any) error {
	if format == outputJSON {
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
