package transport

import (
	"context"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// PushHandler receives each batch decoded from a peer's push stream. It is
// called synchronously on that stream's goroutine, one batch at a time per
// stream: a slow handler slows only that peer (its sender then sees
// ErrQueueFull), never the others. The batch belongs to the handler.
type PushHandler func(from peer.ID, b *wire.Batch)

// LendingPushHandler is a PushHandler that may give the batch back: when it
// returns false, nothing of b (its envelopes, their payloads and
// signatures, its control entries) is referenced after the call, and the
// transport reads the stream's next frame into the same memory. When it
// returns true the batch is the handler's, as with PushHandler. A handler
// that drops most of what it is sent (duplicates, channels it has not
// joined, a peer's flood) then costs no allocation per frame.
type LendingPushHandler func(from peer.ID, b *wire.Batch) (kept bool)

// PullHandler answers a pull request. ctx ends at the request deadline
// (Config.RequestTimeout) or when the transport closes, not when the client
// gives up, so a handler should be quick. An error (or a nil response)
// resets the stream.
type PullHandler func(ctx context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error)

// HelloHandler answers a hello with the local hello. ctx ends at the request
// deadline or when the transport closes. An error (or a nil response) resets
// the stream.
type HelloHandler func(ctx context.Context, from peer.ID, req *wire.Hello) (*wire.Hello, error)

// Admission decides whether a peer may use an inbound push or pull stream,
// typically whether its hello has completed. It is called on the stream's
// goroutine right after the stream opens, before anything is read, so it
// must be quick and must not call back into the Transport.
type Admission func(from peer.ID, pid protocol.ID) bool

// Option sets a collaborator of the Transport.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	tracers tracers
	push    LendingPushHandler
	pull    PullHandler
	hello   HelloHandler
	admit   Admission
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithTracer adds a tracer; several tracers all receive every event.
func WithTracer(t Tracer) Option {
	return func(o *options) {
		if t != nil {
			o.tracers = append(o.tracers, t)
		}
	}
}

// WithPushHandler serves ProtocolPush with h. Without it the transport
// only sends batches and peers cannot open push streams to it.
func WithPushHandler(h PushHandler) Option {
	return func(o *options) {
		o.push = func(from peer.ID, b *wire.Batch) bool { h(from, b); return true }
	}
}

// WithLendingPushHandler is WithPushHandler for a handler that gives back
// the batches it does not keep.
func WithLendingPushHandler(h LendingPushHandler) Option {
	return func(o *options) { o.push = h }
}

// WithPullHandler serves ProtocolPull with h. Without it the protocol is
// not offered.
func WithPullHandler(h PullHandler) Option {
	return func(o *options) { o.pull = h }
}

// WithHelloHandler serves ProtocolHello with h. Without it the protocol is
// not offered.
func WithHelloHandler(h HelloHandler) Option {
	return func(o *options) { o.hello = h }
}

// WithAdmission gates inbound push and pull streams with admit: a stream
// from a peer it refuses is reset (traced as ErrorUnadmitted) without a
// byte read, and no handler is called. Hello streams are never gated: the
// hello is how a peer becomes admitted. A peer refused later keeps the
// streams it has open until ResetInbound. Without it every peer is
// admitted.
func WithAdmission(admit Admission) Option {
	return func(o *options) { o.admit = admit }
}
