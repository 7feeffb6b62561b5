package gateway

import (
	"errors"
	"net"
	"os"

	"ferry.dev/ferry/internal/tunnel"
)

// asConn gives any net.Conn the half-close Splice needs. TCP and TLS conns
// have CloseWrite; for a conn without it (an exotic injected dialer) FIN
// cannot be relayed, so CloseWrite does nothing and the conn is closed when
// the other direction ends too.
func asConn(c net.Conn) tunnel.Conn {
	if hc, ok := c.(tunnel.Conn); ok {
		return hc
	}
	return noHalfClose{c}
}

type noHalfClose struct{ net.Conn }

func (noHalfClose) CloseWrite() error { return nil }

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
