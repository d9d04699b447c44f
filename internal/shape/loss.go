package shape

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Loss is random frame loss: every host it wraps drops each frame it
// receives on a lossy protocol with probability rate, decided by a
// generator of its own seeded from the seed and the host's index, so a run
// is reproducible (and, in the bench, every system of a seed draws from the
// same streams).
//
// The lossy protocols are the caller's payload protocols, framed as
// uvarint-length-prefixed messages (fabgossip's push stream: blocks, alive,
// StateInfo and the tree's IHAVE, GRAFT and PRUNE). A dropped frame is
// skipped whole on the receiving side, as if the sender's queue had dropped
// it: the stream and its framing stay intact. Request/response exchanges
// (fabgossip's pull and hello) should not be lossy: they are one frame each
// way with a timeout, and a lost one would measure that timeout rather than
// the repair. Empty frames are never dropped. A nil *Loss drops nothing.
type Loss struct {
	rate   float64
	seed   uint64
	lossy  func(protocol.ID) bool
	onDrop func() // called for every dropped frame; nil: nothing
}

// NewLoss returns the loss of rate on the protocols lossy accepts, seeded
// from seed, calling onDrop (if not nil) for every frame it drops; nil for
// rate ≤ 0.
func NewLoss(rate float64, seed uint64, lossy func(protocol.ID) bool, onDrop func()) *Loss {
	if rate <= 0 {
		return nil
	}
	return &Loss{rate: rate, seed: seed, lossy: lossy, onDrop: onDrop}
}

// Rate is the probability that a frame is dropped (0 for a nil l).
func (l *Loss) Rate() float64 {
	if l == nil {
		return 0
	}
	return l.rate
}

// Wrap returns h with loss on the frames it receives; i is its index in the
// network, which seeds its generator. For a nil l, Wrap returns h.
func (l *Loss) Wrap(i int, h host.Host) host.Host {
	if l == nil {
		return h
	}
	return &lossyHost{Host: h, l: l, rng: rand.New(rand.NewPCG(l.seed, 0x1055_0000+uint64(i)))}
}

// lossyHost is a host whose inbound streams on payload protocols drop
// frames.
type lossyHost struct {
	host.Host
	l *Loss

	mu  sync.Mutex // guards rng: every inbound stream of the host draws from it
	rng *rand.Rand
}

var _ host.Host = (*lossyHost)(nil)

// drop draws one frame's fate.
func (h *lossyHost) drop() bool {
	h.mu.Lock()
	lost := h.rng.Float64() < h.l.rate
	h.mu.Unlock()
	if lost && h.l.onDrop != nil {
		h.l.onDrop()
	}
	return lost
}

func (h *lossyHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if !h.l.lossy(pid) {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.lossy(s)) })
}

func (h *lossyHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	if !h.l.lossy(pid) {
		h.Host.SetStreamHandlerMatch(pid, match, handler)
		return
	}
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.lossy(s)) })
}

func (h *lossyHost) lossy(s network.Stream) *lossyStream {
	return &lossyStream{Stream: s, r: bufio.NewReaderSize(s, 32<<10), drop: h.drop}
}

// lossyStream passes on the frames of an uvarint-length-prefixed stream,
// header and body, except those drop says to skip. Writes are untouched.
// Like any stream it is read by one goroutine at a time.
type lossyStream struct {
	network.Stream
	r    *bufio.Reader
	drop func() bool

	hdr    []byte // the kept frame's header, not yet returned
	remain uint64 // body bytes of the current frame not yet read or skipped
	keep   bool   // whether the current frame is passed on
}

func (s *lossyStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(s.hdr) > 0 {
			n := copy(p, s.hdr)
			s.hdr = s.hdr[n:]
			return n, nil
		}
		if s.remain > 0 && s.keep {
			n, err := s.r.Read(p[:min(uint64(len(p)), s.remain)])
			s.remain -= uint64(n)
			return n, err
		}
		if s.remain > 0 {
			for s.remain > 0 {
				n, err := s.r.Discard(int(min(s.remain, 1<<30)))
				s.remain -= uint64(n)
				if err != nil {
					return 0, err
				}
			}
			continue
		}
		size, err := binary.ReadUvarint(s.r)
		if err != nil {
			return 0, err
		}
		s.remain = size
		s.keep = size == 0 || !s.drop()
		if s.keep {
			s.hdr = binary.AppendUvarint(s.hdr[:0], size)
		}
	}
}
