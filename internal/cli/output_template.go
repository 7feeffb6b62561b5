package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/template"

	"k8s.io/cli-runtime/pkg/printers"
)

// checkTemplate parses a template format's argument (reading the file of
// the -file formats), so that a bad template fails as a flag error.
func checkTemplate(format, arg string) error {
	text, err := templateText(format, arg)
	if err != nil {
		return err
	}
	if slices.Contains([]string{outputGoTemplate, outputGoTemplateFile}, format) {
		_, err = parseGoTemplate(format, text)
	} else {
		_, err = newJSONPath(format, text)
	}
	return err
}

// templateText is the template itself: arg, or the file arg names.
func templateText(format, arg string) (string, error) {
	if format != outputJSONPathFile && format != outputGoTemplateFile {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", fmt.Errorf("-o %s: %w", format, err)
	}
	return string(b), nil
}

// printTemplate prints v through a jsonpath or Go template. Both read v as
// -o json prints it (decoded from that JSON), so a path that works with jq
// on -o json names the same field here.
func printTemplate(w io.Writer, format, arg string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	text, err := templateText(format, arg)
	if err != nil {
		return err
	}
	var data any
	if err := json.Unmarshal(raw, &data); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if format == outputGoTemplate || format == outputGoTemplateFile {
		t, err := parseGoTemplate(format, text)
		if err != nil {
			return err
		}
		if err := t.Execute(w, data); err != nil {
			return fmt.Errorf("-o %s: %w (compare the template with the fields of -o json)", format, err)
		}
		return nil
	}
	p, err := newJSONPath(format, text)
	if err != nil {
		return err
	}
	// The printer's engine rather than its PrintObj, which wants a
	// runtime.Object and puts the whole object, in Go syntax, in its error.
	if err := p.Execute(w, data); err != nil {
		return fmt.Errorf("-o %s: %w (compare the template with the fields of -o json)", format, err)
	}
	return nil
}

// newJSONPath is kubectl's jsonpath printer, missing keys allowed as with
// kubectl's default --allow-missing-template-keys.
func newJSONPath(format, text string) (*printers.JSONPathPrinter, error) {
	p, err := printers.NewJSONPathPrinter(text)
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w (e.g. %s)", format, err, templateExample(format))
	}
	p.AllowMissingKeys(true)
	p.EnableJSONOutput(format == outputJSONPathAsJSON)
	return p, nil
}

// parseGoTemplate parses a Go template with kubectl's two helpers. It is
// not kubectl's GoTemplatePrinter because that one decodes into a map, and
// `ferry links -o json` is a list.
func parseGoTemplate(format, text string) (*template.Template, error) {
	t, err := template.New("output").Funcs(template.FuncMap{
		"exists":       exists,
		"base64decode": base64decode,
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w (e.g. %s)", format, err, templateExample(format))
	}
	return t, nil
}

// exists is kubectl's template helper: whether the path of keys (for
// objects) and indices (for lists) leads somewhere in item.
func exists(item any, indices ...any) bool {
	for _, i := range indices {
		switch v := item.(type) {
		case map[string]any:
			k, ok := i.(string)
			if !ok {
				return false
			}
			if item, ok = v[k]; !ok {
				return false
			}
		case []any:
			n, ok := i.(int)
			if !ok || n < 0 || n >= len(v) {
				return false
			}
			item = v[n]
		default:
			return false
		}
	}
	return true
}

func base64decode(v string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("base64decode: %w", err)
	}
	return string(b), nil
}
