package transport

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DropReason says why frames were discarded before reaching a peer.
type DropReason int

const (
	// DropQueueFull: Send found the peer's queue full (ErrQueueFull).
	DropQueueFull DropReason = iota
	// DropTooLarge: Send refused a batch over MaxFrameSize (ErrFrameTooLarge).
	DropTooLarge
	// DropWriteError: opening the stream or writing the frame failed.
	DropWriteError
	// DropBackoff: the peer's stream failed recently and is backing off.
	DropBackoff
	// DropClosed: the peer's writer was closed (ClosePeer, disconnect, Close)
	// with the frame still queued.
	DropClosed

	numDropReasons = iota
)

var dropReasonNames = [numDropReasons]string{"queue_full", "too_large", "write_error", "backoff", "closed"}

// String returns a stable, metric-friendly name.
func (r DropReason) String() string {
	if r < 0 || int(r) >= numDropReasons {
		return "unknown"
	}
	return dropReasonNames[r]
}

// ErrorKind classifies a stream failure.
type ErrorKind int

const (
	// ErrorMalformed: a frame failed to decode (bad prefix, truncated, not
	// the expected message). The stream was reset.
	ErrorMalformed ErrorKind = iota
	// ErrorOversized: a frame announced a body over MaxFrameSize. The stream
	// was reset before the body was read.
	ErrorOversized
	// ErrorStream: reading or writing failed (remote reset, timeout,
	// connection lost) or the stream could not be opened.
	ErrorStream
	// ErrorHandler: a pull or hello handler returned an error, or the
	// server was at MaxInboundRequests or MaxInboundHellosPerPeer. The
	// request stream was reset.
	ErrorHandler
	// ErrorTooManyItems: a frame had more items in a repeated field than
	// its cap (ErrTooManyItems). The stream was reset before the frame was
	// decoded.
	ErrorTooManyItems
	// ErrorUnadmitted: an inbound push or pull stream from a peer the
	// admission function refused was reset, at open before anything was
	// read, or by ResetInbound.
	ErrorUnadmitted

	numErrorKinds = iota
)

var errorKindNames = [numErrorKinds]string{"malformed", "oversized", "stream", "handler", "too_many_items", "unadmitted"}

// String returns a stable, metric-friendly name.
func (k ErrorKind) String() string {
	if k < 0 || int(k) >= numErrorKinds {
		return "unknown"
	}
	return errorKindNames[k]
}

// Tracer observes the transport. Methods are called synchronously on the
// transport's goroutines, so they must be fast and must not call back into
// the Transport. Embed NopTracer to implement only some of them.
type Tracer interface {
	// FrameSent reports a frame of n bytes (length prefix included) written
	// to p on proto.
	FrameSent(p peer.ID, proto protocol.ID, n int)
	// FrameReceived reports a frame of n bytes (length prefix included)
	// read from p on proto and decoded.
	FrameReceived(p peer.ID, proto protocol.ID, n int)
	// Dropped reports frames for p discarded before they were written.
	Dropped(p peer.ID, proto protocol.ID, reason DropReason, frames int)
	// StreamError reports a failed stream with p on proto.
	StreamError(p peer.ID, proto protocol.ID, kind ErrorKind, err error)
}

// NopTracer ignores every event.
type NopTracer struct{}

var _ Tracer = NopTracer{}

func (NopTracer) FrameSent(peer.ID, protocol.ID, int)                {}
func (NopTracer) FrameReceived(peer.ID, protocol.ID, int)            {}
func (NopTracer) Dropped(peer.ID, protocol.ID, DropReason, int)      {}
func (NopTracer) StreamError(peer.ID, protocol.ID, ErrorKind, error) {}

// tracers fans events out to the configured tracers; with none it does
// nothing, so the transport never checks for nil.
type tracers []Tracer

func (ts tracers) frameSent(p peer.ID, proto protocol.ID, n int) {
	for _, t := range ts {
		t.FrameSent(p, proto, n)
	}
}

func (ts tracers) frameReceived(p peer.ID, proto protocol.ID, n int) {
	for _, t := range ts {
		t.FrameReceived(p, proto, n)
	}
}

func (ts tracers) dropped(p peer.ID, proto protocol.ID, reason DropReason, frames int) {
	if frames == 0 {
		return
	}
	for _, t := range ts {
		t.Dropped(p, proto, reason, frames)
	}
}

func (ts tracers) streamError(p peer.ID, proto protocol.ID, kind ErrorKind, err error) {
	for _, t := range ts {
		t.StreamError(p, proto, kind, err)
	}
}

// Counts are totals of one protocol.
type Counts struct {
	FramesSent, BytesSent         uint64
	FramesReceived, BytesReceived uint64
	Drops                         [numDropReasons]uint64
	Errors                        [numErrorKinds]uint64
}

// CountingTracer keeps atomic totals per protocol. It is safe for concurrent
// use; its zero value is ready.
type CountingTracer struct {
	protocols [numProtocols]protocolCounters
}

var _ Tracer = (*CountingTracer)(nil)

type protocolCounters struct {
	framesSent, bytesSent         atomic.Uint64
	framesReceived, bytesReceived atomic.Uint64
	drops                         [numDropReasons]atomic.Uint64
	errors                        [numErrorKinds]atomic.Uint64
}

// FrameSent implements Tracer.
func (c *CountingTracer) FrameSent(_ peer.ID, proto protocol.ID, n int) {
	if pc := c.of(proto); pc != nil {
		pc.framesSent.Add(1)
		pc.bytesSent.Add(uint64(n))
	}
}

// FrameReceived implements Tracer.
func (c *CountingTracer) FrameReceived(_ peer.ID, proto protocol.ID, n int) {
	if pc := c.of(proto); pc != nil {
		pc.framesReceived.Add(1)
		pc.bytesReceived.Add(uint64(n))
	}
}

// Dropped implements Tracer.
func (c *CountingTracer) Dropped(_ peer.ID, proto protocol.ID, reason DropReason, frames int) {
	if pc := c.of(proto); pc != nil && reason >= 0 && int(reason) < numDropReasons {
		pc.drops[reason].Add(uint64(frames))
	}
}

// StreamError implements Tracer.
func (c *CountingTracer) StreamError(_ peer.ID, proto protocol.ID, kind ErrorKind, _ error) {
	if pc := c.of(proto); pc != nil && kind >= 0 && int(kind) < numErrorKinds {
		pc.errors[kind].Add(1)
	}
}

// Counts returns a snapshot of proto's totals (zero for an unknown protocol).
func (c *CountingTracer) Counts(proto protocol.ID) Counts {
	pc := c.of(proto)
	if pc == nil {
		return Counts{}
	}
	out := Counts{
		FramesSent:     pc.framesSent.Load(),
		BytesSent:      pc.bytesSent.Load(),
		FramesReceived: pc.framesReceived.Load(),
		BytesReceived:  pc.bytesReceived.Load(),
	}
	for i := range pc.drops {
		out.Drops[i] = pc.drops[i].Load()
	}
	for i := range pc.errors {
		out.Errors[i] = pc.errors[i].Load()
	}
	return out
}

func (c *CountingTracer) of(proto protocol.ID) *protocolCounters {
	i := protocolIndex(proto)
	if i < 0 {
		return nil
	}
	return &c.protocols[i]
}
