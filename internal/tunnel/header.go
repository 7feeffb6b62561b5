package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxHeaderBytes bounds the stream header body (contracts.md:
// MaxHeaderBytes, 1 KiB). A valid header is at most 1+1+63+1+63+2 = 131
// bytes, so the default leaves room for later versions while keeping a
// hostile peer from making ingress allocate more than this per stream.
const DefaultMaxHeaderBytes = 1024

// headerVersion is the first body byte; a new layout gets a new number
// instead of guessing from the length.
const headerVersion = 1

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

// WriteHeader sends the stream header for t. It does not validate t: the
// sender is trusted to send what it was configured with, and the receiver
// validates anyway.
func WriteHeader(w io.Writer, t Target) error {
	if len(t.Namespace) > 255 || len(t.Service) > 255 || t.Port < 0 || t.Port > 65535 {
		return fmt.Errorf("%w: %s cannot be encoded", ErrBadHeader, t)
	}
	body := 1 + 1 + len(t.Namespace) + 1 + len(t.Service) + 2
	buf := make([]byte, 0, 2+body)
	buf = binary.BigEndian.AppendUint16(buf, uint16(body))
	buf = append(buf, headerVersion, byte(len(t.Namespace)))
	buf = append(buf, t.Namespace...)
	buf = append(buf, byte(len(t.Service)))
	buf = append(buf, t.Service...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(t.Port))
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
	if len(b) < 1 || b[0] != headerVersion {
		return Target{}, fmt.Errorf("%w: unknown version", ErrBadHeader)
	}
	b = b[1:]
	ns, b, ok := cutString(b)
	if !ok {
		return Target{}, fmt.Errorf("%w: truncated namespace", ErrBadHeader)
	}
	svc, b, ok := cutString(b)
	if !ok {
		return Target{}, fmt.Errorf("%w: truncated service", ErrBadHeader)
	}
	// Exactly two bytes must remain: trailing bytes would be an ambiguity a
	// later version could be confused by.
	if len(b) != 2 {
		return Target{}, fmt.Errorf("%w: %d bytes after service, want 2", ErrBadHeader, len(b))
	}
	return Target{Namespace: ns, Service: svc, Port: int(binary.BigEndian.Uint16(b))}, nil
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
	Reason string
}

func (e *RejectError) Error() string {
	if e.Reason == "" {
		return "tunnel stream rejected: " + e.Status.String()
	}
	return "tunnel stream rejected: " + e.Status.String() + ": " + e.Reason
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
