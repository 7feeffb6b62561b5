package cli

import (
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"ferry.dev/ferry/internal/version"
)

const (
	revA = "3098bdb2c0f1aa55e0c6fd3c47a1bbd0c1e6a2f4"
	revB = "abcdef0123456789abcdef0123456789abcdef01"
)

// scraped is one pod's /metrics as scrapeComponent returns it, parsed
// from the text a daemon serves.
func scraped(t *testing.T, pod, image, text string) podMetrics {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return podMetrics{pod: pod, image: image, fams: fams}
}

func buildInfo(v, rev string) string {
	return "# TYPE ferry_build_info gauge\nferry_build_info{goversion=\"go1.26.8\",revision=\"" + rev + "\",version=\"" + v + "\"} 1\n" +
		"# TYPE ferry_gateway_tunnel_sessions gauge\nferry_gateway_tunnel_sessions{remote=\"west\"} 2\n"
}

// TestComponentBuilds: what the pods report replaces the image tag; pods
// that differ are each listed (a rollout); a pod without the metric (an
// older daemon) counts by its own image tag; with no pod read, the
// Deployment's tag stays. The line and the skew follow.
func TestComponentBuilds(t *testing.T) {
	const image = "reg.example/ferry-gateway:3098bdb" // git describe --always, no tags
	for _, tc := range []struct {
		name    string
		pods    func(t *testing.T) []podMetrics
		version string
		commit  string
		source  string
		line    string
		// skew with a client built from revA as "dev"
		skew string
	}{
		{"no pods: the image tag", func(*testing.T) []podMetrics { return nil },
			"3098bdb", "", sourceImage, "3098bdb (" + image + ", 2/2 ready)",
			"no skew: one commit everywhere (3098bdb2c0f1)"},
		{"pods report their build", func(t *testing.T) []podMetrics {
			return []podMetrics{scraped(t, "gw-1", image, buildInfo("3098bdb", revA)), scraped(t, "gw-0", image, buildInfo("3098bdb", revA))}
		}, "3098bdb", revA, sourceMetrics, "3098bdb (commit 3098bdb2c0f1, " + image + ", 2/2 ready)",
			"no skew: one commit everywhere (3098bdb2c0f1)"},
		{"a rollout: two builds", func(t *testing.T) []podMetrics {
			return []podMetrics{scraped(t, "gw-new", image, buildInfo("v0.4.0", revB)), scraped(t, "gw-old", image, buildInfo("3098bdb", revA)), scraped(t, "gw-new2", image, buildInfo("v0.4.0", revB))}
		}, "3098bdb, v0.4.0", revA + ", " + revB, sourceMetrics,
			"2 builds: 3098bdb (commit 3098bdb2c0f1) on 1 pod, v0.4.0 (commit abcdef012345) on 2 pods (" + image + ", 2/2 ready)",
			"skew unknown: not both releases, nor one commit (client dev@3098bdb2c0f1 / gateway v0.4.0; gateway 3098bdb@3098bdb2c0f1 / gateway v0.4.0)"},
		{"an older pod without the metric: its own image tag", func(t *testing.T) []podMetrics {
			return []podMetrics{scraped(t, "gw-old", "reg.example/ferry-gateway:v0.2.0", "# TYPE up gauge\nup 1\n"), scraped(t, "gw-new", image, buildInfo("3098bdb", revA))}
		}, "3098bdb, v0.2.0", revA, sourceMetrics,
			"2 builds: 3098bdb (commit 3098bdb2c0f1) on 1 pod, v0.2.0 on 1 pod (" + image + ", 2/2 ready)",
			"skew unknown: not both releases, nor one commit (client dev@3098bdb2c0f1 / gateway v0.2.0; gateway 3098bdb@3098bdb2c0f1 / gateway v0.2.0)"},
		{"only older pods: image source", func(t *testing.T) []podMetrics {
			return []podMetrics{scraped(t, "gw-old", "reg.example/ferry-gateway:v0.2.0", "# TYPE up gauge\nup 1\n")}
		}, "v0.2.0", "", sourceImage, "v0.2.0 (" + image + ", 2/2 ready)",
			"skew unknown: not both releases, nor one commit (client dev@3098bdb2c0f1 / gateway v0.2.0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &componentVersion{Version: imageTag(image), Source: sourceImage, Image: image, Ready: "2/2"}
			v.setBuilds(tc.pods(t))
			if v.Version != tc.version || v.Commit != tc.commit || v.Source != tc.source {
				t.Errorf("version %q, commit %q, source %q; want %q, %q, %q", v.Version, v.Commit, v.Source, tc.version, tc.commit, tc.source)
			}
			if got := v.describe(); got != tc.line {
				t.Errorf("line:\n got %q\nwant %q", got, tc.line)
			}
			r := versionSkew(version.Build{Version: "dev", Revision: revA}, &serverVersion{Gateway: v})
			if r.Message != tc.skew {
				t.Errorf("skew:\n got %q\nwant %q", r.Message, tc.skew)
			}
		})
	}
}

// TestVersionSkewOfBuilds: releases are judged by their minor versions,
// one clean commit by itself, and anything else is unknown, never a
// warning.
func TestVersionSkewOfBuilds(t *testing.T) {
	comp := func(b ...componentBuild) *componentVersion { return &componentVersion{Builds: b} }
	for _, tc := range []struct {
		name             string
		client           version.Build
		ctrl, gw         *componentVersion
		known, supported bool
		message          string
	}{
		{"releases one minor apart", version.Build{Version: "v0.3.0", Revision: revA},
			comp(componentBuild{Version: "v0.2.1", Commit: revB}), comp(componentBuild{Version: "v0.3.0", Commit: revA}), true, true,
			"within the supported skew (same major version, at most 1 minor apart)"},
		{"a gateway mid-rollout two minors from the controller", version.Build{Version: "v0.3.0", Revision: revA},
			comp(componentBuild{Version: "v0.2.1", Commit: revB}), comp(componentBuild{Version: "v0.3.0", Commit: revA}, componentBuild{Version: "v0.4.0", Commit: "c0ffee0123"}), true, false,
			"controller v0.2.1 and gateway v0.4.0 are more than 1 minor version apart"},
		// Unknown is not a warning: supported stays as it was.
		{"dirty development builds", version.Build{Version: "dev", Revision: revA + "-dirty"},
			comp(componentBuild{Version: "dev", Commit: revA + "-dirty"}), nil, false, true,
			"skew unknown: not both releases, nor one commit (client dev@3098bdb2c0f1-dirty / controller dev@3098bdb2c0f1-dirty)"},
		{"a bare-commit image tag of the client's commit", version.Build{Version: "dev", Revision: revA},
			&componentVersion{Version: "3098bdb2c0f1"}, &componentVersion{Version: "3098bdb"}, true, true,
			"no skew: one commit everywhere (3098bdb2c0f1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := versionSkew(tc.client, &serverVersion{Controller: tc.ctrl, Gateway: tc.gw})
			if r.Known != tc.known || r.Supported != tc.supported || !strings.HasPrefix(r.Message, tc.message) {
				t.Errorf("got known %v, supported %v, %q\nwant %v, %v, %q…", r.Known, r.Supported, r.Message, tc.known, tc.supported, tc.message)
			}
		})
	}
}
