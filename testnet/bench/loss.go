package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport"
)

// loss is the frame loss of one system's run (Options.Loss): every host it
// wraps drops each frame it receives on a payload protocol with
// probability rate, decided by a generator of its own seeded from the run's
// seed and the host's index, so a run is reproducible and every system of a
// seed draws from the same streams.
//
// The payload protocols are the ones each system disseminates on, all
// framed as uvarint-length-prefixed messages: fabgossip's push stream
// (blocks, alive, StateInfo and the tree's IHAVE, GRAFT and PRUNE), every
// GossipSub RPC (messages, IHAVE, IWANT, GRAFT, PRUNE) and the direct
// system's stream. A dropped frame is skipped whole on the receiving side,
// as if the sender's queue had dropped it: the stream and its framing stay
// intact. Request/response exchanges (fabgossip's pull and hello) are not
// dropped: they are one frame each way with a timeout, and a lost one would
// measure that timeout rather than the repair. Empty frames (the direct
// system's stream opener) are never dropped. A nil *loss drops nothing.
type loss struct {
	rate float64
	seed uint64
	rec  *recorder // counts the dropped frames in Result.Drops; nil: not counted
}

// lossDrop is the Result.Drops key of the frames the loss fault dropped.
const lossDrop = "bench loss: frames dropped"

// newLoss returns the loss of rate for a run of seed, or nil for rate ≤ 0.
func newLoss(rate float64, seed uint64) *loss {
	if rate <= 0 {
		return nil
	}
	return &loss{rate: rate, seed: seed}
}

func (l *loss) String() string {
	if l == nil {
		return "no frame loss"
	}
	return fmt.Sprintf("%g%% of payload frames dropped at random on receipt (fabgossip push, GossipSub RPCs, direct; not pull or hello)", 100*l.rate)
}

// lossyProtocol reports whether frames of pid are subject to loss.
func lossyProtocol(pid protocol.ID) bool {
	switch {
	case pid == transport.ProtocolPush, pid == ProtocolDirect:
		return true
	case strings.HasPrefix(string(pid), "/meshsub/"), strings.HasPrefix(string(pid), "/floodsub/"):
		return true
	}
	return false
}

// wrap returns h with loss on the frames it receives; i is its index in the
// layout, which seeds its generator. For a nil l, wrap returns h.
func (l *loss) wrap(i int, h host.Host) host.Host {
	if l == nil {
		return h
	}
	return &lossyHost{Host: h, l: l, rng: rand.New(rand.NewPCG(l.seed, 0x1055_0000+uint64(i)))}
}

// lossyHost is a host whose inbound streams on payload protocols drop
// frames.
type lossyHost struct {
	host.Host
	l *loss

	mu  sync.Mutex // guards rng: every inbound stream of the host draws from it
	rng *rand.Rand
}

var _ host.Host = (*lossyHost)(nil)

// drop draws one frame's fate.
func (h *lossyHost) drop() bool {
	h.mu.Lock()
	lost := h.rng.Float64() < h.l.rate
	h.mu.Unlock()
	if lost && h.l.rec != nil {
		h.l.rec.dropped(lossDrop, 1)
	}
	return lost
}

func (h *lossyHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if !lossyProtocol(pid) {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.lossy(s)) })
}

func (h *lossyHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	if !lossyProtocol(pid) {
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

// lossMarkdown is the loss table of a report, "" for a run without loss:
// per system, block size and seed, how much arrived within 1 s.
func (r *Report) lossMarkdown() string {
	if r.Workload.Loss <= 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Loss fault: %s. Target: 100%% within 1 s.\n\n", newLoss(r.Workload.Loss, 0))
	b.WriteString("| system | size | seed | cov within 1 s | P_full within 1 s | cov_final | T_full p50 / p99 / max (ms) |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Results {
		if x.Error != "" {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.4f | %.3f | %.4f | %.0f / %.0f / %.0f |\n",
			x.System, sizeName(x.BlockSize), x.Seed, x.Cov1s, x.PFull1s, x.CovFinal, x.TFullP50Ms, x.TFullP99Ms, x.TFullMaxMs)
	}
	b.WriteString("\n")
	return b.String()
}
