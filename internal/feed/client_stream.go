package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/feed/feedpb"
)

// attempt runs one stream to addr. It returns whether the server answered
// (connected), the version the handler is current with, and why it ended.
func (c *Client) attempt(ctx context.Context, addr string, version uint64, h Handler) (connected bool, v uint64, err error) {
	v = version
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conn, err := c.dial(addr)
	if err != nil {
		return false, v, err
	}
	defer conn.Close()

	// The watchdog covers connecting too: a black-holed address or a server
	// that never answers is abandoned after HeartbeatTimeout.
	timeout := c.cfg.HeartbeatTimeout
	watchdog := time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("%w (%s, from %s)", ErrHeartbeatTimeout, timeout, addr))
	})
	defer watchdog.Stop()
	cause := func(err error) error {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return c
		}
		return fmt.Errorf("feed: %s: %w", addr, err)
	}

	stream, err := feedpb.NewFeedClient(conn).Subscribe(ctx)
	if err != nil {
		return false, v, cause(err)
	}
	if err := stream.Send(&feedpb.ClientMessage{Msg: &feedpb.ClientMessage_Subscribe{Subscribe: &feedpb.Subscribe{ResumeVersion: version}}}); err != nil {
		if errors.Is(err, io.EOF) {
			// The server already ended the stream (e.g. refused us); gRPC
			// gives the real status only to Recv.
			_, err = stream.Recv()
		}
		return false, v, cause(err)
	}
	var applied atomic.Uint64
	applied.Store(v)
	go c.sendHeartbeats(ctx, stream, &applied)

	r := reassembler{max: c.cfg.MaxExports, maxBytes: c.cfg.MaxUpdateBytes, resume: version}
	for {
		m, err := stream.Recv()
		if err != nil {
			return connected, v, cause(err)
		}
		watchdog.Reset(timeout)
		if !connected {
			connected = true
			c.log.Info("feed connected", "addr", addr, "resume", version)
			h.Connected()
		}
		u, hb, err := r.add(m)
		switch {
		case err != nil:
			return connected, v, fmt.Errorf("feed: %s: %w", addr, err)
		case u != nil:
			h.Apply(*u)
			v = u.Version
			applied.Store(v)
		case hb:
			v = r.floor
			applied.Store(v)
			h.Heartbeat(v)
		}
	}
}

// sendHeartbeats tells the server, every HeartbeatInterval, that the client
// is alive and which version it has applied.
func (c *Client) sendHeartbeats(ctx context.Context, stream feedpb.Feed_SubscribeClient, applied *atomic.Uint64) {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m := &feedpb.ClientMessage{Msg: &feedpb.ClientMessage_Heartbeat{Heartbeat: &feedpb.Heartbeat{Version: applied.Load()}}}
			if err := stream.Send(m); err != nil {
				// The stream is broken; Recv reports why, with the status.
				return
			}
		}
	}
}

// reassembler joins chunks into Updates and checks the protocol: chunks of
// one update are contiguous and share version and kind; within a stream,
// deltas move the version forward and nothing moves it back; a stream's
// first delta or heartbeat must be at or beyond the resume version (the
// server accepted the resume), anything else begins with a snapshot.
type reassembler struct {
	max      int // entries of one update
	maxBytes int // wire bytes of one update
	resume   uint64
	floor    uint64 // highest version seen on this stream
	started  bool
	pending  *Update
	size     int // wire bytes of pending so far
}

func (r *reassembler) add(m *feedpb.ServerMessage) (u *Update, heartbeat bool, err error) {
	switch {
	case m.GetHeartbeat() != nil:
		hv := m.GetHeartbeat().GetVersion()
		if r.pending != nil {
			return nil, false, fmt.Errorf("%w: heartbeat inside a chunked update", errProtocol)
		}
		if err := r.advance(hv, kindHeartbeat); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	case m.GetUpdate() != nil:
		return r.addUpdate(m.GetUpdate())
	}
	return nil, false, fmt.Errorf("%w: empty server message", errProtocol)
}

// advance checks and records the version of a heartbeat or of a complete
// update.
func (r *reassembler) advance(v uint64, kind string) error {
	var ok bool
	switch {
	case !r.started && kind == kindSnapshot:
		ok = true // a stream may begin with any snapshot (e.g. another replica)
	case !r.started && r.resume == 0:
		ok = false // nothing to resume from: the first update must be a snapshot
	case !r.started && kind == kindDelta:
		ok = v > r.resume
	case !r.started: // heartbeat: the resume was accepted with nothing new
		ok = v >= r.resume
	case kind == kindDelta:
		ok = v > r.floor
	default:
		ok = v >= r.floor
	}
	if !ok {
		return fmt.Errorf("%w: %s version %d (stream at %d, resumed from %d)", errProtocol, kind, v, r.floor, r.resume)
	}
	r.started, r.floor = true, v
	return nil
}

func (r *reassembler) addUpdate(pu *feedpb.Update) (*Update, bool, error) {
	if r.pending == nil {
		r.pending = &Update{Version: pu.GetVersion(), Snapshot: pu.GetSnapshot()}
	} else if pu.GetVersion() != r.pending.Version || pu.GetSnapshot() != r.pending.Snapshot {
		return nil, false, fmt.Errorf("%w: chunk of version %d inside update %d", errProtocol, pu.GetVersion(), r.pending.Version)
	}
	if len(r.pending.Upserts)+len(pu.GetUpserts())+len(r.pending.Deletes)+len(pu.GetDeletes()) > r.max {
		return nil, false, fmt.Errorf("%w: update %d has more than %d entries", errProtocol, pu.GetVersion(), r.max)
	}
	r.size += proto.Size(pu)
	if r.size > r.maxBytes {
		return nil, false, fmt.Errorf("%w: update %d is larger than %d bytes (MaxUpdateBytes)", errProtocol, pu.GetVersion(), r.maxBytes)
	}
	for _, pe := range pu.GetUpserts() {
		e, err := fromProto(pe)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", errProtocol, err)
		}
		r.pending.Upserts = append(r.pending.Upserts, e)
	}
	for _, pk := range pu.GetDeletes() {
		k, err := keyFromProto(pk)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", errProtocol, err)
		}
		r.pending.Deletes = append(r.pending.Deletes, k)
	}
	if pu.GetMore() {
		return nil, false, nil
	}
	u := r.pending
	r.pending, r.size = nil, 0
	kind := kindDelta
	if u.Snapshot {
		kind = kindSnapshot
	}
	if err := r.advance(u.Version, kind); err != nil {
		return nil, false, err
	}
	if u.Snapshot && len(u.Deletes) > 0 {
		return nil, false, fmt.Errorf("%w: snapshot with deletes", errProtocol)
	}
	return u, false, nil
}
