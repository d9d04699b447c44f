package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

var (
	errNilResponse = errors.New("handler returned no response")
	errBusy        = errors.New("too many inbound requests")
	errHelloBusy   = errors.New("too many inbound hellos from the peer")
	errHelloSilent = errors.New("no hello request within HelloFirstByteTimeout")
	errNoRequest   = fmt.Errorf("%w: stream ended before the request", ErrMalformedFrame)
)

// Pull sends req to peer to on ProtocolPull and returns its response. It
// fails when ctx ends, after Config.RequestTimeout, or if the peer resets the
// stream (its handler failed or it does not serve pull).
func (t *Transport) Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	resp := new(wire.PullResponse)
	if err := t.request(ctx, to, ProtocolPull, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Hello sends the local hello to peer to on ProtocolHello and returns the
// peer's. Errors are as for Pull.
func (t *Transport) Hello(ctx context.Context, to peer.ID, req *wire.Hello) (*wire.Hello, error) {
	resp := new(wire.Hello)
	if err := t.request(ctx, to, ProtocolHello, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// request runs one exchange on a new stream: write the request frame,
// CloseWrite, read one capped response frame, Close. Any failure resets the
// stream; ctx's end (or Close) resets it too, which unblocks the read.
func (t *Transport) request(ctx context.Context, to peer.ID, pid protocol.ID, req, resp proto.Message) error {
	if to == t.host.ID() {
		return ErrSelf
	}
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	frame, err := t.appendFrame(pid, req)
	if err != nil {
		return fmt.Errorf("%s to %s: %w", pid, to, err)
	}

	ctx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
	defer cancel()
	stopOnClose := context.AfterFunc(t.ctx, cancel)
	defer stopOnClose()

	s, err := t.host.NewStream(ctx, to, pid)
	if err != nil {
		return t.requestErr(ctx, to, pid, fmt.Errorf("open: %w", err))
	}
	stopReset := context.AfterFunc(ctx, func() { _ = s.Reset() })
	fail := func(err error) error {
		if stopReset() {
			_ = s.Reset()
		}
		return t.requestErr(ctx, to, pid, err)
	}

	if err := s.Scope().SetService(ServiceName); err != nil {
		return fail(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := s.SetDeadline(dl); err != nil {
			return fail(err)
		}
	}
	if _, err := s.Write(frame); err != nil {
		return fail(fmt.Errorf("write request: %w", err))
	}
	t.trace.frameSent(to, pid, len(frame))
	// The request is complete on the wire; a server that already answered
	// and closed may have stopped our send side (QUIC), so a failed
	// CloseWrite is not fatal: the read below tells.
	_ = s.CloseWrite()

	fr := newScopedFrameReader(s, t.frameCap(pid), s.Scope())
	defer fr.Release()
	body, err := fr.Next()
	if errors.Is(err, io.EOF) {
		err = ErrNoResponse
	}
	if err == nil {
		err = t.decode(body, resp)
	}
	if err != nil {
		return fail(fmt.Errorf("read response: %w", err))
	}
	t.trace.frameReceived(to, pid, protowire.SizeVarint(uint64(len(body)))+len(body))
	if stopReset() {
		_ = s.Close()
	}
	return nil
}

// requestErr traces a failed request and words its error: the caller's
// context error or ErrClosed when that is why it failed.
func (t *Transport) requestErr(ctx context.Context, to peer.ID, pid protocol.ID, err error) error {
	switch {
	case t.ctx.Err() != nil:
		return fmt.Errorf("%s to %s: %w: %w", pid, to, ErrClosed, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	kind, _ := classify(err)
	t.trace.streamError(to, pid, kind, err)
	return fmt.Errorf("%s to %s: %w", pid, to, err)
}

func (t *Transport) handlePull(s network.Stream) {
	t.serve(s, ProtocolPull, new(wire.PullRequest), func(ctx context.Context, from peer.ID, req proto.Message) (proto.Message, error) {
		resp, err := t.pull(ctx, from, req.(*wire.PullRequest))
		if err == nil && resp == nil {
			err = errNilResponse
		}
		return resp, err
	})
}

func (t *Transport) handleHello(s network.Stream) {
	t.serve(s, ProtocolHello, new(wire.Hello), func(ctx context.Context, from peer.ID, req proto.Message) (proto.Message, error) {
		resp, err := t.hello(ctx, from, req.(*wire.Hello))
		if err == nil && resp == nil {
			err = errNilResponse
		}
		return resp, err
	})
}

// serve answers one request stream: read one capped request frame, call
// handle, write its response, Close. Everything, the handler included, is
// bounded by RequestTimeout; any failure resets the stream. Before
// anything is read, a pull stream passes admission and a hello stream
// MaxInboundHellosPerPeer, then either takes one of MaxInboundRequests;
// a hello must then start arriving within HelloFirstByteTimeout.
func (t *Transport) serve(s network.Stream, pid protocol.ID, req proto.Message,
	handle func(context.Context, peer.ID, proto.Message) (proto.Message, error)) {
	if !t.enter() {
		_ = s.Reset()
		return
	}
	defer t.wg.Done()
	from := s.Conn().RemotePeer()
	if !t.openInbound(s, from, pid) {
		return
	}
	ended := false
	end := func(err error) {
		ended = true
		t.endInbound(s, from, pid, err)
	}
	defer func() {
		if !ended {
			t.untrack(s, from)
		}
	}()

	select {
	case t.requests <- struct{}{}:
		defer func() { <-t.requests }()
	default:
		_ = s.ResetWithError(network.StreamResourceLimitExceeded)
		t.trace.streamError(from, pid, ErrorHandler, errBusy)
		return
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		end(err)
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.RequestTimeout)
	defer cancel()
	stopReset := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stopReset()
	if err := s.SetDeadline(time.Now().Add(t.cfg.RequestTimeout)); err != nil {
		end(err)
		return
	}

	var r io.Reader = s
	var silent *firstByteTimer
	if pid == ProtocolHello {
		silent = startFirstByteTimer(s, t.cfg.HelloFirstByteTimeout)
		r = silent
	}
	fr := newScopedFrameReader(r, t.frameCap(pid), s.Scope())
	defer fr.Release()
	body, err := fr.Next()
	if errors.Is(err, io.EOF) {
		err = errNoRequest
	}
	if silent.fired() {
		err = fmt.Errorf("%w: %w", errHelloSilent, err)
	}
	if err == nil {
		err = t.decode(body, req)
	}
	if err != nil {
		end(err)
		return
	}
	t.trace.frameReceived(from, pid, protowire.SizeVarint(uint64(len(body)))+len(body))

	resp, err := handle(ctx, from, req)
	var frame []byte
	if err == nil {
		frame, err = t.appendFrame(pid, resp)
	}
	if err != nil {
		_ = s.Reset()
		if t.ctx.Err() == nil {
			t.trace.streamError(from, pid, ErrorHandler, err)
			t.log.Debug("request failed", "peer", from, "protocol", pid, "err", err)
		}
		return
	}
	if _, err := s.Write(frame); err != nil {
		end(fmt.Errorf("write response: %w", err))
		return
	}
	t.trace.frameSent(from, pid, len(frame))
	if stopReset() {
		_ = s.Close()
	}
}

// frameCap is the frame body cap of pid: MaxHelloSize for hellos (when
// below MaxFrameSize), MaxFrameSize otherwise.
func (t *Transport) frameCap(pid protocol.ID) int {
	if pid == ProtocolHello {
		return min(t.cfg.MaxHelloSize, t.cfg.MaxFrameSize)
	}
	return t.cfg.MaxFrameSize
}

// appendFrame frames a request or response of pid, refusing one the peer
// would refuse: over pid's frame cap, or (if it has the same caps) over a
// count cap.
func (t *Transport) appendFrame(pid protocol.ID, m proto.Message) ([]byte, error) {
	frame, err := AppendFrame(nil, m, t.frameCap(pid))
	if err != nil {
		return nil, err
	}
	_, n := protowire.ConsumeVarint(frame)
	if err := checkCounts(frame[n:], m, t.caps); err != nil {
		return nil, err
	}
	return frame, nil
}

// decode is decodeBody behind the counting pre-pass: the decode path of
// every request and response.
func (t *Transport) decode(body []byte, m proto.Message) error {
	if err := checkCounts(body, m, t.caps); err != nil {
		return err
	}
	return decodeBody(body, m)
}

// firstByteTimer resets a stream unless a byte arrives on it in time. It
// reads through to the stream, and a nil timer reads nothing.
type firstByteTimer struct {
	s       network.Stream
	timer   *time.Timer
	stopped bool // a byte arrived: only the reading goroutine touches it
	reset   atomic.Bool
}

func startFirstByteTimer(s network.Stream, d time.Duration) *firstByteTimer {
	ft := &firstByteTimer{s: s}
	ft.timer = time.AfterFunc(d, func() {
		ft.reset.Store(true)
		_ = s.Reset()
	})
	return ft
}

func (ft *firstByteTimer) Read(p []byte) (int, error) {
	n, err := ft.s.Read(p)
	if n > 0 && !ft.stopped {
		ft.stopped = true
		ft.timer.Stop()
	}
	return n, err
}

// fired reports whether the timer reset the stream.
func (ft *firstByteTimer) fired() bool {
	if ft == nil {
		return false
	}
	ft.timer.Stop()
	return ft.reset.Load()
}
