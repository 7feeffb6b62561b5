package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// auditPolicy records every write at the Metadata level (who, what, the
// answer; no bodies) and nothing else: what a reliability scenario needs to
// say "this process wrote nothing", observed by the API server rather than
// by the process itself.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// AuditEvent is one write the API server recorded: the fields of the
// audit.k8s.io/v1 Event that tell who wrote what, and with which answer.
type AuditEvent struct {
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// Received is when the request arrived.
	Received time.Time `json:"requestReceivedTimestamp"`
}

// Resource is "resource" or "resource/subresource".
func (e AuditEvent) Resource() string {
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// Stores says whether the request could change what the API server holds.
// Access and token reviews are creates that store nothing: questions.
func (e AuditEvent) Stores() bool { return !strings.HasSuffix(e.ObjectRef.Resource, "reviews") }

func (e AuditEvent) String() string {
	return fmt.Sprintf("%s %s %s/%s -> %d by %q at %s", e.Verb, e.Resource(), e.ObjectRef.Namespace, e.ObjectRef.Name,
		e.ResponseStatus.Code, e.UserAgent, e.Received.Format(time.RFC3339Nano))
}

func (c *Cluster) auditLog() string { return filepath.Join(c.Dir, "audit.log") }

// auditFlags writes the policy and returns the API server's audit flags, or
// none when the cluster was not asked to audit.
func (c *Cluster) auditFlags() ([]string, error) {
	if !c.opts.Audit {
		return nil, nil
	}
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, fmt.Errorf("audit policy: %w", err)
	}
	// Blocking: a write is in the log before its answer leaves the API
	// server, so a scenario that reads the log after a write sees it.
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + c.auditLog(),
		"--audit-log-format=json", "--audit-log-mode=blocking"}, nil
}

// AuditedWrites returns the writes the API server recorded (ClusterOptions
// Audit) that match keep, in the order they were logged; nil keep keeps
// all. It survives API server restarts: the log is appended to.
func (c *Cluster) AuditedWrites(keep func(AuditEvent) bool) ([]AuditEvent, error) {
	if !c.opts.Audit {
		return nil, errors.New("testenv: cluster " + c.Name + " was started without Audit")
	}
	f, err := os.Open(c.auditLog())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var out []AuditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			// The API server may be killed mid-line; the rest is whole.
			continue
		}
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}
