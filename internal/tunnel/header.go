package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultMaxHeaderBytes bounds the stream header body (contracts.md:
// MaxHeaderBytes, 1 KiB). A valid header is at most 1+1+63+1+63+2+1+63 =
// 195 bytes (version 2, with a hostname), so the default leaves room for
// later versions while keeping a hostile peer from making ingress allocate
// more than this per stream.
const DefaultMaxHeaderBytes = 1024

// Header versions: the first body byte. A new layout gets a new number
// instead of guessing from the length.
const (
	// headerV1 is namespace, service, port: any ready endpoint of the
	// Service.
	headerV1 = 1
	// headerV2 adds a hostname after the port: one pod of a headless
	// Service. It is written only when the target names a hostname, so
	// ordinary streams stay byte-for-byte version 1 and a gateway that
	// knows only version 1 still serves them. That gateway refuses a
	// version-2 header as malformed, which is the failure we want: read as
	// version 1 it would connect to any pod of the Service.
	headerV2 = 2
)

// maxReasonBytes keeps a rejection reason short: it is a hint for the remote
// operator, not a channel for data.
const maxReasonBytes = 200

var (
	// ErrHeaderTooLarge means the peer announced a header over the limit. The
	// body is not read.
	ErrHeaderTooLarge = errors.New("tunnel header too large")
	// ErrBadHeader means the header is not one this version understands.
	ErrBadHeader = errors.New("malformed tunnel header")
)

// WriteHeader sends the stream header for t: version 1, or version 2 when t
// names a hostname. It does not validate t: the sender is trusted to send
// what it was configured with, and the receiver validates anyway.
func WriteHeader(w io.Writer, t Target) error {
	if len(t.Namespace) > 255 || len(t.Service) > 255 || len(t.Hostname) > 255 || t.Port < 0 || t.Port > 65535 {
		return fmt.Errorf("%w: %s cannot be encoded", ErrBadHeader, t)
	}
	version := byte(headerV1)
	body := 1 + 1 + len(t.Namespace) + 1 + len(t.Service) + 2
	if t.Hostname != "" {
		version = headerV2
		body += 1 + len(t.Hostname)
	}
	buf := make([]byte, 0, 2+body)
	buf = binary.BigEndian.AppendUint16(buf, uint16(body))
	buf = append(buf, version, byte(len(t.Namespace)))
	buf = append(buf, t.Namespace...)
	buf = append(buf, byte(len(t.Service)))
	buf = append(buf, t.Service...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(t.Port))
	if version == headerV2 {
		buf = append(buf, byte(len(t.Hostname)))
		buf = append(buf, t.Hostname...)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write tunnel header: %w", err)
	}
	return nil
}

// ReadHeader reads one stream header, refusing bodies longer than max bytes
// before reading or allocating them. The result is only decoded, not
// validated: call Target.Validate.
func ReadHeader(r io.Reader, max int) (Target, error) {
	if max <= 0 {
		max = DefaultMaxHeaderBytes
	}
	var lenBuf [2]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return Target{}, fmt.Errorf("read tunnel header length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(lenBuf[:]))
	if n > max {
		return Target{}, fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Target{}, fmt.Errorf("read tunnel header body: %w", err)
	}
	return decodeHeader(body)
}

func decodeHeader(b []byte) (Target, error) {
	if len(b) < 1 || (b[0] != headerV1 && b[0] != headerV2) {
		return Target{}, fmt.Errorf("%w: unknown version", ErrBadHeader)
	}
	version := b[0]
	b = b[1:]
	ns, b, ok := cutString(b)
	if !ok {
		return Target{}, fmt.Errorf("%w: truncated namespace", ErrBadHeader)
	}
	svc, b, ok := cutString(b)
	if !ok {
		return Target{}, fmt.Errorf("%w: truncated service", ErrBadHeader)
	}
	if len(b) < 2 {
		return Target{}, fmt.Errorf("%w: truncated port", ErrBadHeader)
	}
	t := Target{Namespace: ns, Service: svc, Port: int(binary.BigEndian.Uint16(b))}
	b = b[2:]
	if version == headerV2 {
		t.Hostname, b, ok = cutString(b)
		if !ok {
			return Target{}, fmt.Errorf("%w: truncated hostname", ErrBadHeader)
		}
		// Version 2 exists to name a hostname; one without it would be a
		// second spelling of a version-1 header.
		if t.Hostname == "" {
			return Target{}, fmt.Errorf("%w: version 2 with an empty hostname", ErrBadHeader)
		}
	}
	// Nothing may follow: trailing bytes would be an ambiguity a later
	// version could be confused by.
	if len(b) != 0 {
		return Target{}, fmt.Errorf("%w: %d trailing bytes", ErrBadHeader, len(b))
	}
	return t, nil
}

func cutString(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}

// Status is the one-byte reply ingress sends after the header. The values are
// wire format: never renumber them.
type Status byte

const (
	StatusOK Status = 0
	// StatusBadHeader: the header was oversized or malformed.
	StatusBadHeader Status = 1
	// StatusInvalidTarget: the target is not in canonical form.
	StatusInvalidTarget Status = 2
	// StatusDenied: not exported, not exported to the caller's cluster, or
	// the caller may not open streams. One code for all of them so a caller
	// cannot probe which Services exist.
	StatusDenied Status = 3
	// StatusUnavailable: no ready endpoint accepted the connection.
	StatusUnavailable Status = 4
	// StatusOverloaded: a stream or connection limit was reached.
	StatusOverloaded Status = 5
	// StatusDraining: the gateway is shutting down; try another replica.
	StatusDraining Status = 6
	// StatusInternal: anything else.
	StatusInternal Status = 7
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusBadHeader:
		return "bad_header"
	case StatusInvalidTarget:
		return "invalid_target"
	case StatusDenied:
		return "denied"
	case StatusUnavailable:
		return "unavailable"
	case StatusOverloaded:
		return "overloaded"
	case StatusDraining:
		return "draining"
	case StatusInternal:
		return "internal"
	}
	return fmt.Sprintf("status_%d", byte(s))
}

// RejectError is what the egress side sees when ingress refused a stream.
type RejectError struct {
	Status Status
	// Reason is the remote gateway's short reason, as it sent it. For
	// StatusDenied it is always "denied": one answer for every
	// authorization failure, so that a caller cannot probe which Services
	// exist or whom they are exported to.
	Reason string
	// Cluster and Target are what this side asked for (set by Client.Open,
	// never read from the wire), so a log line names the stream refused.
	Cluster string
	Target  Target
}

// statusMeaning says, for the caller's operator, what a status means and
// where to look next. It says no more than the status itself does: the
// remote gateway logs the exact reason (message "stream rejected", key
// reason) and counts it in ferry_gateway_ingress_rejected_total.
var statusMeaning = map[Status]string{
	StatusBadHeader:     "the remote gateway could not read the stream header (a version mismatch between the gateways?)",
	StatusInvalidTarget: "the target is not a valid Service name and port",
	StatusDenied: "the remote gateway does not let this cluster reach that Service and port: it is not exported there, " +
		"not exported to this cluster (the ServiceExport's ferry.dev/allowed-clusters, `ferry export --to`), or not a port or hostname of the export; " +
		"the remote gateway's log says which (\"stream rejected\")",
	StatusUnavailable: "no ready endpoint there accepted the connection, or the remote gateway has not synced its exports yet",
	StatusOverloaded:  "the remote gateway is at a stream or connection limit",
	StatusDraining:    "the remote gateway, or this session, is shutting down",
	StatusInternal:    "the remote gateway failed internally; see its log",
}

func (e *RejectError) Error() string {
	var b strings.Builder
	b.WriteString("tunnel stream")
	if e.Target != (Target{}) {
		b.WriteString(" to " + e.Target.String())
	}
	if e.Cluster != "" {
		b.WriteString(" in cluster " + e.Cluster)
	}
	b.WriteString(" rejected: " + e.Status.String())
	// The wire reason adds something only when it is not the status again
	// (it is for every denial): "denied: denied" told nobody anything.
	if e.Reason != "" && e.Reason != e.Status.String() {
		b.WriteString(" (" + strconv.Quote(e.Reason) + ")")
	}
	if m := statusMeaning[e.Status]; m != "" {
		b.WriteString(": " + m)
	}
	return b.String()
}

// Retriable reports whether the same target might succeed through another
// gateway replica or another cluster; authorization and syntax failures never
// will.
func (e *RejectError) Retriable() bool {
	switch e.Status {
	case StatusUnavailable, StatusOverloaded, StatusDraining:
		return true
	}
	return false
}

// WriteReply sends the status byte and, for rejections, a short reason.
func WriteReply(w io.Writer, s Status, reason string) error {
	buf := []byte{byte(s)}
	if s != StatusOK {
		if len(reason) > maxReasonBytes {
			reason = reason[:maxReasonBytes]
		}
		buf = append(buf, byte(len(reason)))
		buf = append(buf, reason...)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write tunnel reply: %w", err)
	}
	return nil
}

// ReadReply returns nil for OK, a *RejectError for a rejection, or the I/O
// error that prevented reading the reply.
func ReadReply(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("read tunnel reply: %w", err)
	}
	s := Status(b[0])
	if s == StatusOK {
		return nil
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return &RejectError{Status: s}
	}
	reason := make([]byte, b[0])
	if _, err := io.ReadFull(r, reason); err != nil {
		return &RejectError{Status: s}
	}
	return &RejectError{Status: s, Reason: string(reason)}
}
