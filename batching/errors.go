package batching

import "errors"

// Errors that callers of Add and Push test for with errors.Is.
var (
	// ErrClosed is returned by Emitter.Add after Close: the message is not
	// buffered and will never be sent.
	ErrClosed = errors.New("batching: emitter closed")

	// ErrFull is returned when MaxPending messages are already buffered and
	// the new message would not replace one of them by key. The message is
	// dropped and counted in Stats.DroppedFull; the buffer never grows past
	// its bound.
	ErrFull = errors.New("batching: queue full")
)
