package transport

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Config holds the transport's tunables. Start from DefaultConfig and change
// fields; New rejects a Config that fails Validate.
type Config struct {
	// MaxFrameSize caps a frame body in bytes, on both sides: Send and the
	// request methods refuse larger messages, readers reset a stream that
	// announces one. Every peer of a network must use the same value, or the
	// larger side's frames reset the smaller side's streams. Readers hold up
	// to this much memory per inbound stream (reserved in the libp2p
	// resource manager).
	MaxFrameSize int

	// SendQueueSize is the number of batches each peer's send queue holds
	// before Send returns ErrQueueFull. Larger absorbs longer bursts to a
	// slow peer at the cost of memory and staleness.
	SendQueueSize int

	// SendQueueBytes caps the bytes of the batches queued for one peer:
	// Send returns ErrQueueFull when a batch would take the queue past it,
	// unless the queue is empty (one batch of up to MaxFrameSize always
	// fits). With SendQueueSize it bounds a sender's memory per peer, which
	// a count alone does not: 128 batches of megabyte blocks are 128 MB.
	SendQueueBytes int

	// WriteTimeout bounds the write of one frame on a push stream. A peer
	// that does not drain a frame within it has its stream reset and the
	// frame dropped. Must allow MaxFrameSize bytes at the slowest link
	// speed you support.
	WriteTimeout time.Duration

	// OpenTimeout bounds opening a push stream (dial, identify and protocol
	// negotiation included).
	OpenTimeout time.Duration

	// RequestTimeout bounds a whole pull or hello exchange, on both sides; a
	// caller's earlier context deadline wins.
	RequestTimeout time.Duration

	// ReopenBackoffMin and ReopenBackoffMax bound the exponential backoff
	// after a push stream fails to open or write. While a peer is backing off,
	// its batches are dropped (and counted) rather than queued.
	ReopenBackoffMin time.Duration
	ReopenBackoffMax time.Duration

	// IdleTimeout is how long a peer's push writer stays without traffic
	// before it closes its stream and exits, so writers do not pile up with
	// churn. Zero keeps writers until the peer disconnects or ClosePeer.
	IdleTimeout time.Duration

	// MaxInboundRequests caps the pull and hello requests served at once,
	// across all peers; streams beyond it are reset with
	// StreamResourceLimitExceeded before anything is read.
	MaxInboundRequests int

	// MaxInboundHellosPerPeer caps the hello streams one peer has open to
	// this one at a time; more are reset at once, before they take one of
	// MaxInboundRequests, so one peer cannot hold every request slot.
	MaxInboundHellosPerPeer int

	// HelloFirstByteTimeout is how long a served hello stream may stay
	// silent: one whose request has not started arriving within it is
	// reset, so a caller that stalls frees its slot long before
	// RequestTimeout. It must allow one round trip on the slowest link.
	HelloFirstByteTimeout time.Duration

	// MaxHelloSize caps a hello frame body in bytes, both ways, in place
	// of MaxFrameSize when smaller: a hello is one alive envelope
	// (certificate and addresses, typically well under 1 KiB) and comes
	// from a peer not yet verified, so it gets far less memory than a push
	// frame.
	MaxHelloSize int

	// The count caps below bound a frame's decoding cost by its size: a
	// frame whose repeated fields exceed one is refused (ErrTooManyItems,
	// the stream reset) before anything is allocated for it. Without them
	// 4 MiB of empty items decode to 2 million messages, hundreds of MiB
	// of heap. Every peer of a network must allow what the others send.

	// MaxBatchEnvelopes caps the envelopes of a push batch. Senders
	// batch an emitter flush (MaxPropagationBurstSize messages), far less.
	MaxBatchEnvelopes int

	// MaxBatchControl caps the tree control entries of a push batch: one
	// per (channel, root) tree the sender has news about for this peer.
	MaxBatchControl int

	// MaxControlNumbers caps the block numbers of one control entry,
	// IHAVE and GRAFT together.
	MaxControlNumbers int

	// MaxPullRanges caps the ranges of a fetch request and of a digest.
	MaxPullRanges int

	// MaxPullEnvelopes caps the envelopes of a pull response: the blocks
	// of a fetch, the elements of a StateInfo snapshot, the alive
	// messages of a membership response. Responders must stay under it
	// (a membership response of a larger network must be cut).
	MaxPullEnvelopes int

	// InboundBytesPerSecond is each peer's budget for the push frames
	// this peer reads from it, over all its streams, with a burst of two
	// full frames: past it the peer's reader waits (TCP pushes back on the
	// sender), so one peer cannot take more than its share of this peer's
	// CPU. It slows, never drops. 0 turns budgets off.
	InboundBytesPerSecond int
}

// DefaultConfig returns the defaults: libp2p's 4 MiB message cap, 128
// batches and 16 MiB per peer, 10 s for writes, opens and requests, a
// reopen backoff from 100 ms to 30 s, idle writers reclaimed after 2 min,
// 64 concurrent requests; hellos of at most 64 KiB, 2 at a time per peer,
// silent for at most 2 s; 1024 items of each repeated field and 256
// numbers per tree control entry; 128 MiB/s (about a gigabit) of push
// frames read per peer.
func DefaultConfig() Config {
	return Config{
		MaxFrameSize:            network.MessageSizeMax,
		SendQueueSize:           128,
		SendQueueBytes:          16 << 20,
		WriteTimeout:            10 * time.Second,
		OpenTimeout:             10 * time.Second,
		RequestTimeout:          10 * time.Second,
		ReopenBackoffMin:        100 * time.Millisecond,
		ReopenBackoffMax:        30 * time.Second,
		IdleTimeout:             2 * time.Minute,
		MaxInboundRequests:      64,
		MaxInboundHellosPerPeer: 2,
		HelloFirstByteTimeout:   2 * time.Second,
		MaxHelloSize:            64 << 10,
		MaxBatchEnvelopes:       1024,
		MaxBatchControl:         1024,
		MaxControlNumbers:       256,
		MaxPullRanges:           1024,
		MaxPullEnvelopes:        1024,
		InboundBytesPerSecond:   128 << 20,
	}
}

// Validate reports the first invalid field, naming it and its value.
func (c Config) Validate() error {
	const positive, nonNegative = "must be positive", "must not be negative"
	checks := []struct {
		name  string
		value any
		ok    bool
		want  string
	}{
		{"MaxFrameSize", c.MaxFrameSize, c.MaxFrameSize > 0, positive},
		{"SendQueueSize", c.SendQueueSize, c.SendQueueSize > 0, positive},
		{"SendQueueBytes", c.SendQueueBytes, c.SendQueueBytes > 0, positive},
		{"WriteTimeout", c.WriteTimeout, c.WriteTimeout > 0, positive},
		{"OpenTimeout", c.OpenTimeout, c.OpenTimeout > 0, positive},
		{"RequestTimeout", c.RequestTimeout, c.RequestTimeout > 0, positive},
		{"ReopenBackoffMin", c.ReopenBackoffMin, c.ReopenBackoffMin > 0, positive},
		{"ReopenBackoffMax", c.ReopenBackoffMax, c.ReopenBackoffMax >= c.ReopenBackoffMin,
			fmt.Sprintf("must be at least ReopenBackoffMin (%s)", c.ReopenBackoffMin)},
		{"IdleTimeout", c.IdleTimeout, c.IdleTimeout >= 0, nonNegative},
		{"MaxInboundRequests", c.MaxInboundRequests, c.MaxInboundRequests > 0, positive},
		{"MaxInboundHellosPerPeer", c.MaxInboundHellosPerPeer, c.MaxInboundHellosPerPeer > 0, positive},
		{"HelloFirstByteTimeout", c.HelloFirstByteTimeout, c.HelloFirstByteTimeout > 0, positive},
		{"MaxHelloSize", c.MaxHelloSize, c.MaxHelloSize > 0, positive},
		{"MaxBatchEnvelopes", c.MaxBatchEnvelopes, c.MaxBatchEnvelopes > 0, positive},
		{"MaxBatchControl", c.MaxBatchControl, c.MaxBatchControl >= 0, nonNegative},
		{"MaxControlNumbers", c.MaxControlNumbers, c.MaxControlNumbers >= 0, nonNegative},
		{"MaxPullRanges", c.MaxPullRanges, c.MaxPullRanges > 0, positive},
		{"MaxPullEnvelopes", c.MaxPullEnvelopes, c.MaxPullEnvelopes > 0, positive},
		{"InboundBytesPerSecond", c.InboundBytesPerSecond, c.InboundBytesPerSecond >= 0, nonNegative},
	}
	for _, f := range checks {
		if !f.ok {
			return fmt.Errorf("transport config: %s %s, got %v", f.name, f.want, f.value)
		}
	}
	return nil
}
