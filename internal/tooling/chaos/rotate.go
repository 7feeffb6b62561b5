package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ferry.dev/ferry/internal/certsecret"
	"ferry.dev/ferry/internal/cli"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// RotationCheckWait is how long `ferry check` may retry after each step of
// the rotation: the controller copies the bundle and reissues leaves, and
// the daemons reload them, within seconds.
const RotationCheckWait = 90 * time.Second

// S4 rotates the mesh's root across all three clusters while rate requests
// a second flow over every link, exactly as docs/identity.md ("Rotation")
// tells an operator to: `ferry identity` makes the new root and issuers,
// `ferry install` renders each cluster's identity for `kubectl apply`, and
// `ferry check` must pass on every cluster after every step, showing the
// roots and the issuer's root that the step should have left. Traffic
// keeps flowing for dwell after each phase, so that what the phase does to
// live connections (re-verified every TrustCheckInterval) is seen. No
// request may fail. Afterwards the sandbox's root and issuers are the new ones.
func (e *Env) S4(ctx context.Context, rate int, dwell time.Duration) (row Row, err error) {
	row = Row{ID: "S4",
		Scenario:  fmt.Sprintf("mesh root rotated across 3 clusters in three phases (trust both roots; new issuers; drop the old root) while %d requests/s flow over every link", rate),
		Criterion: "0 failed requests; `ferry check` passes on every cluster after every step and shows the phase"}
	dir, err := os.MkdirTemp(e.SB.Dir(), "rotation-")
	if err != nil {
		return row, err
	}
	// What the operator has on disk: the old root and each cluster's issuer.
	old := e.SB.Root
	oldKey, err := old.KeyPEM()
	if err != nil {
		return row, err
	}
	files := map[string][]byte{"old-ca/ca.crt": old.CertPEM(), "old-ca/ca.key": oldKey}
	for _, c := range e.SB.Clusters {
		k, err := c.Issuer.KeyPEM()
		if err != nil {
			return row, err
		}
		files[c.Name+"-old/issuer.crt"], files[c.Name+"-old/issuer.key"] = c.Issuer.CertPEM(), k
	}
	for name, data := range files {
		if err := writeFile(filepath.Join(dir, name), data); err != nil {
			return row, err
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	if _, err := e.ferry(ctx, "identity", "init", "--mesh-domain", e.SB.Mesh, "--out", p("new-ca")); err != nil {
		return row, err
	}
	newRoot, err := os.ReadFile(p("new-ca/ca.crt"))
	if err != nil {
		return row, err
	}
	if err := writeFile(p("both.crt"), append(old.CertPEM(), newRoot...)); err != nil {
		return row, err
	}
	oldFP, err := rootFingerprint(old.CertPEM())
	if err != nil {
		return row, err
	}
	newFP, err := rootFingerprint(newRoot)
	if err != nil {
		return row, err
	}

	type phase struct {
		name       string
		prepare    func(c *sandbox.Cluster) error // ferry identity, if the phase needs it
		install    func(c *sandbox.Cluster) []string
		roots      int
		issuerRoot string
		// drops: the phase removes a root, so every cluster's retired
		// sessions must be gone first.
		drops bool
	}
	phases := []phase{
		{name: "1: trust both roots", roots: 2, issuerRoot: oldFP,
			install: func(c *sandbox.Cluster) []string {
				return []string{"--issuer-cert", p(c.Name + "-old/issuer.crt"), "--issuer-key", p(c.Name + "-old/issuer.key"), "--trust-bundle", p("both.crt")}
			}},
		{name: "2: new issuers", roots: 2, issuerRoot: newFP,
			prepare: func(c *sandbox.Cluster) error {
				_, err := e.ferry(ctx, "identity", "issuer", "--cluster", c.Name, "--root-dir", p("new-ca"), "--extra-roots", p("old-ca/ca.crt"), "--out", p(c.Name+"-new"))
				return err
			},
			install: func(c *sandbox.Cluster) []string { return []string{"--identity-dir", p(c.Name + "-new")} }},
		{name: "3: drop the old root", roots: 1, issuerRoot: newFP, drops: true,
			install: func(c *sandbox.Cluster) []string {
				return []string{"--identity-dir", p(c.Name + "-new"), "--trust-bundle", p("new-ca/ca.crt")}
			}},
	}

	tr := e.startTraffic(ctx, rate, trafficPaths())
	var long *longConns
	defer func() {
		if tr != nil {
			tr.stop()
		}
		if long != nil {
			long.stop()
		}
	}()
	start := time.Now()
	steps := 0
	for _, ph := range phases {
		phaseStart := time.Now()
		if ph.drops {
			// Opened once every leaf is under the new root: they must
			// outlive the old root. (Sessions made before the new issuers
			// would still carry them, and be cut, if a renewed certificate
			// did not retire its sessions.)
			if long, err = e.openLongConns(ctx, trafficPaths()); err != nil {
				return row, err
			}
			for _, c := range e.SB.Clusters {
				if _, err := e.checkTrust(ctx, c, -1, "", cli.CheckRetiring); err != nil {
					row.Figure = fmt.Sprintf("stopped before phase %s", ph.name)
					row.detail("%v", err)
					return row, nil
				}
			}
		}
		for _, c := range e.SB.Clusters {
			if ph.prepare != nil {
				if err := ph.prepare(c); err != nil {
					return row, fmt.Errorf("phase %s, %s: %w", ph.name, c.Name, err)
				}
			}
			manifests, err := e.ferry(ctx, append([]string{"install", "--cluster-name", c.Name}, ph.install(c)...)...)
			if err != nil {
				return row, fmt.Errorf("phase %s, %s: %w", ph.name, c.Name, err)
			}
			if err := c.ApplyYAML(ctx, []byte(manifests)); err != nil {
				return row, fmt.Errorf("phase %s: %w", ph.name, err)
			}
			steps++
			// The cluster just changed must reach the phase; the others
			// must stay healthy (their Links to it included).
			for _, d := range e.SB.Clusters {
				roots, issuerRoot := -1, ""
				if d == c {
					roots, issuerRoot = ph.roots, ph.issuerRoot
				}
				detail, err := e.checkTrust(ctx, d, roots, issuerRoot, "")
				if d == c && c == e.West {
					row.detail("phase %s, west after its step: %s", ph.name, detail)
				}
				if err != nil {
					row.Figure = fmt.Sprintf("stopped in phase %s after %s's step", ph.name, c.Name)
					row.detail("%v", err)
					sent, failed, first := tr.stop()
					tr = nil
					row.detail("%d requests, %d failed; first failure: %s", sent, failed, first)
					return row, nil
				}
			}
		}
		row.detail("phase %s: %s for 3 clusters, each followed by `ferry check` on all 3; then %s of traffic", ph.name, since(time.Since(phaseStart)), dwell)
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case <-time.After(dwell):
		}
	}
	sent, failed, first := tr.stop()
	tr = nil
	lines, longFailed, longFirst := long.stop()
	long = nil
	if err := e.adoptRotation(p("new-ca"), func(c *sandbox.Cluster) string { return p(c.Name + "-new") }); err != nil {
		return row, err
	}
	row.Pass = failed == 0 && longFailed == 0
	row.Figure = fmt.Sprintf("%d requests over %s, %d failed; %d long-lived connections across the drop of the old root, %d failed (%d lines); %d steps, `ferry check` passed on all 3 clusters after each",
		sent, since(time.Since(start)), failed, len(trafficPaths()), longFailed, lines, steps)
	for _, f := range []string{first, longFirst} {
		if f != "" {
			row.detail("first failure: %s", f)
		}
	}
	return row, nil
}

// checkTrust runs `ferry check` on c and requires it to pass. With roots
// >= 0 the trust check must also show that many roots and name issuerRoot
// (a key fingerprint) as the issuer's; the check named strict, if any, must
// pass rather than warn.
func (e *Env) checkTrust(ctx context.Context, c *sandbox.Cluster, roots int, issuerRoot, strict string) (detail string, err error) {
	out, err := e.ferry(ctx, "--context", c.Name, "check", "--wait", RotationCheckWait.String(), "-o", "json")
	var rep cli.CheckReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		return "", fmt.Errorf("ferry --context %s check: %w (output %q)", c.Name, err, out)
	}
	var problems []string
	for _, r := range rep.Checks {
		if r.Status == "failed" || (r.Name == strict && r.Status != "passed") {
			problems = append(problems, r.Name+": "+r.Status+": "+r.Error)
		}
		if r.Name != cli.CheckTrust || roots < 0 {
			continue
		}
		detail = r.Detail
		want := fmt.Sprintf("trusts %d root(s)", roots)
		mark := strings.TrimPrefix(issuerRoot, "sha256:")[:12] + " (the issuer's)"
		if !strings.Contains(r.Detail, want) || !strings.Contains(r.Detail, mark) {
			problems = append(problems, fmt.Sprintf("%s: %q, want %q and %q", r.Name, r.Detail, want, mark))
		}
	}
	if len(problems) > 0 || err != nil {
		if err == nil {
			err = errors.New("passed, but not as this step needs")
		}
		return "", fmt.Errorf("ferry --context %s check: %w: %s", c.Name, err, strings.Join(problems, "; "))
	}
	return detail, nil
}

// adoptRotation makes the sandbox's root and issuers the rotated ones, so
// that later scenarios (which issue certificates of their own) use them.
func (e *Env) adoptRotation(rootDir string, issuerDir func(*sandbox.Cluster) string) error {
	read := func(path string) ([]byte, error) { return os.ReadFile(path) }
	cert, err := read(filepath.Join(rootDir, "ca.crt"))
	if err != nil {
		return err
	}
	key, err := read(filepath.Join(rootDir, "ca.key"))
	if err != nil {
		return err
	}
	root, err := identity.LoadCA(cert, key)
	if err != nil {
		return fmt.Errorf("new root: %w", err)
	}
	issuers := map[*sandbox.Cluster]*identity.CA{}
	for _, c := range e.SB.Clusters {
		d := issuerDir(c)
		cert, err1 := read(filepath.Join(d, "issuer.crt"))
		key, err2 := read(filepath.Join(d, "issuer.key"))
		bundle, err3 := read(filepath.Join(d, "bundle.crt"))
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("issuer of %s: %w", c.Name, errors.Join(err1, err2, err3))
		}
		if issuers[c], _, err = identity.LoadIssuer(cert, key, bundle); err != nil {
			return fmt.Errorf("issuer of %s: %w", c.Name, err)
		}
	}
	e.SB.Root = root
	for c, iss := range issuers {
		c.Issuer = iss
	}
	return nil
}

// ferry runs a ferry command in this process against the sandbox's
// kubeconfig, as the binary would, and returns its standard output.
func (e *Env) ferry(ctx context.Context, args ...string) (string, error) {
	stdout, stderr, err := cli.Run(ctx, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	if err != nil {
		return stdout, fmt.Errorf("ferry %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, nil
}

func rootFingerprint(pem []byte) (string, error) {
	certs, err := identity.ParseCertificatesPEM(pem)
	if err != nil {
		return "", err
	}
	return certsecret.KeyFingerprint(certs[0]), nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
