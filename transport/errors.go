package transport

import "errors"

// Errors that callers test for with errors.Is. Each is returned as is or
// wrapped with context.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("transport: closed")

	// ErrQueueFull is returned by Send when the peer's bounded send queue
	// holds Config.SendQueueSize batches or Config.SendQueueBytes bytes: the
	// peer (or the path to it) is
	// slower than the sender. The batch is not sent and the drop is counted.
	ErrQueueFull = errors.New("transport: peer send queue full")

	// ErrFrameTooLarge is returned when a frame's body exceeds
	// Config.MaxFrameSize: by Send and the request methods before anything is
	// written, and by the frame reader before the body is read.
	ErrFrameTooLarge = errors.New("transport: frame too large")

	// ErrMalformedFrame is returned when a frame cannot be decoded: a bad
	// length prefix, a truncated body, or bytes that are not the expected
	// protobuf message.
	ErrMalformedFrame = errors.New("transport: malformed frame")

	// ErrTooManyItems is returned when a received frame has more items in
	// a repeated field than its Config cap (MaxBatchEnvelopes and the
	// others). It is wrapped with the field, its count and the cap, and
	// found before the frame is decoded; the stream is reset as for a
	// malformed frame.
	ErrTooManyItems = errors.New("transport: too many items")

	// ErrUnadmitted is traced when an inbound push or pull stream is reset
	// because the admission function refused its peer, at open or later
	// through ResetInbound.
	ErrUnadmitted = errors.New("transport: peer not admitted")

	// ErrSelf is returned when the destination is the local peer.
	ErrSelf = errors.New("transport: destination is the local peer")

	// ErrNoResponse is returned by a request when the remote closed the
	// stream without answering.
	ErrNoResponse = errors.New("transport: no response")

	// ErrKeyType is returned by the signing helpers for a key that is not
	// Ed25519, the only key type fabgossip accepts.
	ErrKeyType = errors.New("transport: key is not Ed25519")

	// ErrBadSignature is returned by Open and OpenSecret when a signature
	// does not verify over exactly the payload bytes.
	ErrBadSignature = errors.New("transport: bad signature")

	// ErrMalformedEnvelope is returned by Open and OpenSecret when an
	// envelope is missing its payload or signature, or its payload does not
	// decode.
	ErrMalformedEnvelope = errors.New("transport: malformed envelope")
)
