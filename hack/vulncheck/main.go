// Command vulncheck runs govulncheck over the module against a local copy
// of the Go vulnerability database, and fails when Ferry's code reaches a
// known vulnerability in a module it requires. `make lint` runs it.
//
// Only the Go module proxy is reachable from where Ferry is built and
// tested, not vuln.go.dev, so the database is built here from a pinned
// golang.org/x/vulndb (its OSV files, indexed by its own cmd/indexdb) into
// bin/vulndb/<version>. Both pins are below; bump them together to learn
// of newer vulnerabilities.
//
// A vulnerability in the standard library is fixed by a newer Go, not by
// this repository: it is reported, and fails the run only with -strict
// (for release builds, which must use a patched toolchain).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ferry.dev/ferry/internal/tooling/testenv"
)

const (
	govulncheckVersion = "v1.9.0"
	// vulndbVersion's pseudo-version time is the database's date.
	vulndbVersion = "v0.0.0-20261105234957-e22db6528018"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

func run() error {
	strict := flag.Bool("strict", false, "also fail on vulnerabilities in the standard library (release builds)")
	flag.Parse()
	ctx := context.Background()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	tool, err := ensureGovulncheck(ctx, bin)
	if err != nil {
		return err
	}
	db, dbTime, err := ensureDB(ctx, filepath.Join(bin, "vulndb", vulndbVersion))
	if err != nil {
		return err
	}
	fmt.Printf("vulncheck: govulncheck %s, database golang.org/x/vulndb@%s (last modified %s)\n",
		govulncheckVersion, vulndbVersion, dbTime.Format("2006-01-02"))
	cmd := exec.CommandContext(ctx, tool, "-db", "file://"+db, "-format", "json", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("govulncheck: %w", err)
	}
	r, err := readReport(out)
	if err != nil {
		return err
	}
	return r.print(os.Stdout, *strict)
}

// ensureGovulncheck installs the pinned govulncheck into bin/ unless it is
// there already.
func ensureGovulncheck(ctx context.Context, bin string) (string, error) {
	tool := filepath.Join(bin, "govulncheck")
	if out, err := exec.CommandContext(ctx, tool, "-version").Output(); err == nil && bytes.Contains(out, []byte("govulncheck@"+govulncheckVersion)) {
		return tool, nil
	}
	fmt.Printf("vulncheck: installing govulncheck %s into bin/\n", govulncheckVersion)
	cmd := exec.CommandContext(ctx, "go", "install", "golang.org/x/vuln/cmd/govulncheck@"+govulncheckVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install govulncheck: %w\n%s", err, out)
	}
	return tool, nil
}

// ensureDB builds the v1 database in dir from the pinned vulndb module,
// unless it is there. Its OSV files carry no modification times (git sets
// them where vulndb is deployed), so the index is stamped with the
// pseudo-version's commit time: govulncheck reports that date.
func ensureDB(ctx context.Context, dir string) (string, time.Time, error) {
	stamp, err := pseudoVersionTime(vulndbVersion)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := os.Stat(filepath.Join(dir, "index", "db.json")); err == nil {
		return dir, stamp, nil
	}
	fmt.Printf("vulncheck: building the vulnerability database from golang.org/x/vulndb@%s (once)\n", vulndbVersion)
	out, err := exec.CommandContext(ctx, "go", "mod", "download", "-json", "golang.org/x/vulndb@"+vulndbVersion).Output()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("go mod download golang.org/x/vulndb: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", time.Time{}, fmt.Errorf("go mod download golang.org/x/vulndb: %w", err)
	}
	if mod.Dir == "" {
		return "", time.Time{}, fmt.Errorf("go mod download golang.org/x/vulndb: %s", mod.Error)
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", time.Time{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "golang.org/x/vulndb/cmd/indexdb@"+vulndbVersion,
		"-vulns", filepath.Join(mod.Dir, "data", "osv"), "-out", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", time.Time{}, fmt.Errorf("indexdb: %w\n%s", err, out)
	}
	meta, err := json.Marshal(map[string]string{"modified": stamp.Format(time.RFC3339)})
	if err != nil {
		return "", time.Time{}, err
	}
	if err := writeWithGzip(filepath.Join(tmp, "index", "db.json"), meta); err != nil {
		return "", time.Time{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", time.Time{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", time.Time{}, err
	}
	return dir, stamp, nil
}

// writeWithGzip writes path and path.gz, as indexdb does: govulncheck
// reads either.
func writeWithGzip(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path+".gz", buf.Bytes(), 0o644)
}

func pseudoVersionTime(v string) (time.Time, error) {
	parts := strings.Split(v, "-")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("%s is not a pseudo-version", v)
	}
	return time.Parse("20060102150405", parts[1])
}

// report is what matters of govulncheck's JSON stream: the vulnerabilities
// Ferry's code calls (a finding whose trace reaches a function), by ID.
type report struct {
	summaries map[string]string
	called    map[string]*vuln
}

type vuln struct {
	id, module, found, fixed, example string
}

func readReport(out []byte) (*report, error) {
	r := &report{summaries: map[string]string{}, called: map[string]*vuln{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var msg struct {
			OSV *struct {
				ID      string `json:"id"`
				Summary string `json:"summary"`
			} `json:"osv"`
			Finding *struct {
				OSV          string `json:"osv"`
				FixedVersion string `json:"fixed_version"`
				Trace        []struct {
					Module   string `json:"module"`
					Version  string `json:"version"`
					Package  string `json:"package"`
					Function string `json:"function"`
					Receiver string `json:"receiver"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("govulncheck's output: %w", err)
		}
		if msg.OSV != nil {
			r.summaries[msg.OSV.ID] = msg.OSV.Summary
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue // imported or required, but not called
		}
		if _, seen := r.called[f.OSV]; seen {
			continue
		}
		last := f.Trace[len(f.Trace)-1]
		r.called[f.OSV] = &vuln{
			id: f.OSV, module: f.Trace[0].Module, found: f.Trace[0].Version, fixed: f.FixedVersion,
			example: last.Package + "." + strings.TrimPrefix(last.Receiver+".", ".") + last.Function,
		}
	}
	return r, nil
}

// print lists the called vulnerabilities, modules first, and fails on any
// in a module (a pin to bump) or, with strict, in the standard library.
func (r *report) print(w io.Writer, strict bool) error {
	ids := make([]string, 0, len(r.called))
	for id := range r.called {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := r.called[ids[i]], r.called[ids[j]]
		if (a.module == "stdlib") != (b.module == "stdlib") {
			return b.module == "stdlib"
		}
		return a.id < b.id
	})
	var modules, stdlib int
	for _, id := range ids {
		v := r.called[id]
		if v.module == "stdlib" {
			stdlib++
		} else {
			modules++
		}
		fmt.Fprintf(w, "  %s  %s@%s, fixed in %s: %s (reached from %s)\n", v.id, v.module, v.found, v.fixed, r.summaries[v.id], v.example)
	}
	switch {
	case modules > 0:
		return fmt.Errorf("%d vulnerabilities in required modules are reached from Ferry's code: bump them (go get MODULE@FIXED)", modules)
	case stdlib > 0 && strict:
		return fmt.Errorf("%d vulnerabilities in the standard library are reached: build with a Go that fixes them", stdlib)
	case stdlib > 0:
		fmt.Fprintf(w, "vulncheck: no module vulnerability reached; %d in the standard library of this Go, fixed by a newer Go (release builds run with -strict)\n", stdlib)
	default:
		fmt.Fprintln(w, "vulncheck: no known vulnerability reached")
	}
	return nil
}
