package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
