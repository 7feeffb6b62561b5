package feed

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/feed/feedpb"
	"ferry.dev/ferry/internal/identity"
)

// subscriber is one feed stream. It is level-based: it remembers only the
// version it has sent, and whenever the journal advances it asks for the
// delta since then, so a slow importer skips intermediate states rather
// than queueing them.
type subscriber struct {
	s       *Server
	stream  feedpb.Feed_SubscribeServer
	id      identity.ID
	label   string
	log     *slog.Logger
	visible func(*exports.Export) bool

	sent     uint64       // version the importer is current with
	lastSend time.Time    // for heartbeats on idle streams
	lastRecv atomic.Int64 // unix nanos of the last client message
}

func newSubscriber(s *Server, stream feedpb.Feed_SubscribeServer, id identity.ID) *subscriber {
	cluster := id.Cluster
	return &subscriber{
		s: s, stream: stream, id: id,
		label:   s.metrics.clusterLabel(cluster),
		log:     s.log.With("cluster", cluster),
		visible: func(e *exports.Export) bool { return e.AllowedFor(cluster) },
	}
}

func (sub *subscriber) run() error {
	ctx, cancel := context.WithCancel(sub.stream.Context())
	defer cancel()
	first := make(chan *feedpb.Subscribe, 1)
	recvErr := make(chan error, 1)
	sub.lastRecv.Store(time.Now().UnixNano())
	go sub.receive(first, recvErr)

	timeout := time.NewTimer(sub.s.opts.HeartbeatTimeout)
	defer timeout.Stop()
	var req *feedpb.Subscribe
	select {
	case req = <-first:
	case err := <-recvErr:
		return err
	case <-timeout.C:
		return status.Error(codes.DeadlineExceeded, "no Subscribe message")
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.s.stop:
		return status.Error(codes.Unavailable, "feed server stopping")
	}
	// Never serve an export set that has not synced: an empty snapshot would
	// make the importer withdraw everything.
	select {
	case <-sub.s.journal.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.s.stop:
		return status.Error(codes.Unavailable, "feed server stopping")
	}

	next, err := sub.start(req.GetResumeVersion())
	if err != nil {
		return err
	}
	tick := time.NewTicker(sub.s.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.s.stop:
			return status.Error(codes.Unavailable, "feed server stopping")
		case err := <-recvErr:
			return err
		case <-next:
			if next, err = sub.update(); err != nil {
				return err
			}
		case now := <-tick.C:
			if idle := now.Sub(time.Unix(0, sub.lastRecv.Load())); idle > sub.s.opts.HeartbeatTimeout {
				return status.Errorf(codes.DeadlineExceeded, "no heartbeat from the client for %s", idle.Round(time.Second))
			}
			if now.Sub(sub.lastSend) >= sub.s.opts.HeartbeatInterval-sub.s.opts.HeartbeatInterval/10 {
				if err := sub.heartbeat(); err != nil {
					return err
				}
			}
		}
	}
}

// receive reads client messages: one Subscribe, then Heartbeats.
func (sub *subscriber) receive(first chan<- *feedpb.Subscribe, errc chan<- error) {
	subscribed := false
	for {
		m, err := sub.stream.Recv()
		if err != nil {
			errc <- err
			return
		}
		sub.lastRecv.Store(time.Now().UnixNano())
		switch {
		case !subscribed && m.GetSubscribe() != nil:
			subscribed = true
			first <- m.GetSubscribe()
		case subscribed && m.GetHeartbeat() != nil:
		default:
			errc <- status.Error(codes.InvalidArgument, "unexpected client message: want one Subscribe, then Heartbeats")
			return
		}
	}
}

// start sends what the importer needs first: the delta since its version if
// the journal still covers it (a heartbeat if nothing changed), else a
// snapshot.
func (sub *subscriber) start(resume uint64) (<-chan struct{}, error) {
	if resume != 0 {
		v, ups, dels, next, ok := sub.s.journal.delta(resume, sub.visible)
		if ok {
			sub.log.Info("feed stream resumed", "from", resume, "to", v, "upserts", len(ups), "deletes", len(dels))
			if len(ups)+len(dels) == 0 {
				sub.sent = v
				return next, sub.heartbeat()
			}
			return next, sub.send(v, false, slices.Values(ups), dels)
		}
		sub.log.Info("feed resume version not in history; sending a snapshot", "from", resume)
	}
	return sub.snapshot()
}

func (sub *subscriber) snapshot() (<-chan struct{}, error) {
	v, all, next := sub.s.journal.snapshot(sub.visible)
	return next, sub.send(v, true, all, nil)
}

// update sends the delta since sub.sent, or a snapshot if the journal no
// longer covers it (this importer fell too far behind).
func (sub *subscriber) update() (<-chan struct{}, error) {
	v, ups, dels, next, ok := sub.s.journal.delta(sub.sent, sub.visible)
	if !ok {
		return sub.snapshot()
	}
	if len(ups)+len(dels) == 0 {
		// Nothing this importer may see changed: send nothing. The version
		// advances silently and reaches the client with the next heartbeat.
		sub.sent = v
		return next, nil
	}
	return next, sub.send(v, false, slices.Values(ups), dels)
}

func (sub *subscriber) heartbeat() error {
	m := &feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Heartbeat{Heartbeat: &feedpb.Heartbeat{Version: sub.sent}}}
	return sub.write(m, kindHeartbeat)
}

// send writes one logical update as messages of about chunkBytes each
// (an export larger than that goes alone, up to MaxMessageBytes). A
// message's exports are converted as it fills and dropped once it is
// written, so a subscriber holds one message at a time, whatever the size
// of the update: the transport accepts a stream's next message only when
// the last is on its way, which paces the walk.
func (sub *subscriber) send(v uint64, snapshot bool, ups iter.Seq[exports.Export], dels []exports.Key) error {
	kind := kindDelta
	if snapshot {
		kind = kindSnapshot
	}
	limit := sub.s.opts.MaxMessageBytes - chunkHeadroom
	target := min(limit, chunkBytes)
	cur := &feedpb.Update{Version: v, Snapshot: snapshot}
	size := 0
	flush := func(more bool) error {
		cur.More = more
		err := sub.write(&feedpb.ServerMessage{Msg: &feedpb.ServerMessage_Update{Update: cur}}, kind)
		cur = &feedpb.Update{Version: v, Snapshot: snapshot}
		size = 0
		return err
	}
	for e := range ups {
		p := toProto(&e)
		n := proto.Size(p) + 8 // field tag and length prefix
		if n > limit {
			// Cannot happen within package exports' limits; skip rather than
			// break the stream for every other export.
			sub.log.Error("export too large for one feed message; not sent", "export", e.Key.String(), "bytes", n, "limit", limit)
			continue
		}
		if size > 0 && size+n > target {
			if err := flush(true); err != nil {
				return err
			}
		}
		cur.Upserts = append(cur.Upserts, p)
		size += n
	}
	for _, k := range dels {
		p := keyToProto(k)
		n := proto.Size(p) + 8
		if size > 0 && size+n > target {
			if err := flush(true); err != nil {
				return err
			}
		}
		cur.Deletes = append(cur.Deletes, p)
		size += n
	}
	if err := flush(false); err != nil {
		return err
	}
	sub.sent = v
	sub.s.metrics.Updates.WithLabelValues(sub.label, kind).Inc()
	return nil
}

func (sub *subscriber) write(m *feedpb.ServerMessage, kind string) error {
	if err := sub.stream.Send(m); err != nil {
		return fmt.Errorf("feed: send %s: %w", kind, err)
	}
	sub.lastSend = time.Now()
	sub.s.metrics.Messages.WithLabelValues(sub.label, kind).Inc()
	sub.s.metrics.Bytes.WithLabelValues(sub.label).Add(float64(proto.Size(m)))
	return nil
}
