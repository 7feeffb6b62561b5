package images

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ferry.dev/ferry/internal/tooling/testenv"
)

// stage is what a final stage of the Dockerfile says about its image. The
// reader below knows only the instructions the repo's Dockerfile uses and
// fails on any other in a final stage, so that a new instruction cannot
// slip past the comparison. (No Docker engine runs here, and the build
// stage needs the golang image from Docker Hub, so the Dockerfile cannot
// be built in a test; this compares what it says instead.)
type stage struct {
	From       string
	Copies     [][2]string // source in the build stage, destination
	User       string
	Entrypoint []string
	Expose     []int
	Labels     map[string]string
}

var dockerLabel = regexp.MustCompile(`([a-z.]+)="([^"]*)"`)

// readDockerfile returns the final stages by name, and the build stage's
// go build command line.
func readDockerfile(t *testing.T, path string) (map[string]*stage, string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	stages := map[string]*stage{}
	var s *stage
	var build string
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			s = nil
			if len(f) == 3 && strings.EqualFold(f[1], "AS") && f[0] == "scratch" {
				s = &stage{From: f[0], Labels: map[string]string{}}
				stages[f[2]] = s
			}
			continue
		case "RUN":
			if s == nil && strings.Contains(rest, "go build") {
				build = rest
			}
		}
		if s == nil {
			continue
		}
		switch strings.ToUpper(instr) {
		case "ARG":
		case "LABEL":
			for _, m := range dockerLabel.FindAllStringSubmatch(rest, -1) {
				s.Labels[m[1]] = m[2]
			}
		case "COPY":
			f := strings.Fields(rest)
			if len(f) != 3 || f[0] != "--from=build" {
				t.Fatalf("Dockerfile: COPY %q: the parity test knows only COPY --from=build SRC DST", rest)
			}
			s.Copies = append(s.Copies, [2]string{f[1], f[2]})
		case "USER":
			s.User = rest
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("Dockerfile: EXPOSE %q", rest)
				}
				s.Expose = append(s.Expose, n)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &s.Entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT %q: want the exec (JSON) form: %v", rest, err)
			}
		default:
			t.Fatalf("Dockerfile: %s in a final stage: teach TestDockerfileParity what it means for the image", instr)
		}
	}
	return stages, build
}

// TestDockerfileParity: the Dockerfile and the builder give the same image
// for each daemon: the same file tree (one binary at /<name>, root-owned,
// as COPY leaves it), user, entrypoint, ports and labels, from binaries
// linked with the same flags.
func TestDockerfileParity(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stages, build := readDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) != len(Daemons) {
		t.Fatalf("Dockerfile has %d final stages FROM scratch, want one per daemon (%d)", len(stages), len(Daemons))
	}
	docker := Meta{Version: "${VERSION}", Revision: "${REVISION}", Source: "https://ferry.dev/ferry"}
	if want := `-ldflags "` + LDFlags(docker) + `"`; !strings.Contains(build, want) {
		t.Errorf("Dockerfile's go build does not link with the builder's flags:\n%s\nwant it to contain\n%s", build, want)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "-trimpath") {
		t.Errorf("Dockerfile's go build is not static and trimmed: %s", build)
	}
	for _, d := range Daemons {
		s, ok := stages[d.Name]
		if !ok {
			t.Errorf("Dockerfile has no stage %s", d.Name)
			continue
		}
		img := mustImage(t, d, amd64, docker)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		// The file tree: COPY of the build's binary gives one root-owned
		// file with the mode go build left (0755), at the destination.
		var tree []string
		for _, c := range s.Copies {
			if c[0] != "/out/"+d.Name {
				t.Errorf("%s: COPY %s: want the daemon's own binary", d.Name, c[0])
			}
			tree = append(tree, c[1])
		}
		var built []string
		for _, e := range imageTree(t, img) {
			built = append(built, e.Name)
			if e.UID != 0 || e.GID != 0 || e.Mode != 0o755 {
				t.Errorf("%s: %s is %o %d:%d; COPY gives 755 0:0", d.Name, e.Name, e.Mode, e.UID, e.GID)
			}
		}
		if diff := cmp.Diff(tree, built); diff != "" {
			t.Errorf("%s: file tree (-Dockerfile +builder):\n%s", d.Name, diff)
		}
		if s.User != cf.Config.User {
			t.Errorf("%s: USER %q, builder %q", d.Name, s.User, cf.Config.User)
		}
		if diff := cmp.Diff(s.Entrypoint, cf.Config.Entrypoint); diff != "" {
			t.Errorf("%s: ENTRYPOINT (-Dockerfile +builder):\n%s", d.Name, diff)
		}
		var ports []int
		for p := range cf.Config.ExposedPorts {
			n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
			ports = append(ports, n)
		}
		sort.Ints(ports)
		sort.Ints(s.Expose)
		if diff := cmp.Diff(s.Expose, ports); diff != "" {
			t.Errorf("%s: EXPOSE (-Dockerfile +builder):\n%s", d.Name, diff)
		}
		// Docker stamps its own creation time; every other label must match.
		want := cf.Config.Labels
		delete(want, "org.opencontainers.image.created")
		if diff := cmp.Diff(s.Labels, want); diff != "" {
			t.Errorf("%s: LABEL (-Dockerfile +builder):\n%s", d.Name, diff)
		}
	}
}
