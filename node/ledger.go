package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"slices"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// Errors of a channel's ledger, used for counting; they never leave the node.
var (
	errDuplicate   = errors.New("duplicate block")
	errTooFarAhead = errors.New("block too far ahead of the ledger height")
)

// BlockHash is the hash that links blocks: SHA-256 over the block's header
// (channel, number, previous hash, data hash), each field length-prefixed so
// no two headers encode alike. Block n+1 carries BlockHash(block n) as its
// previous hash.
func BlockHash(b *wire.Block) []byte {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	field := func(p []byte) {
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(p)))])
		h.Write(p)
	}
	field([]byte(b.GetChannel()))
	h.Write(buf[:binary.PutUvarint(buf[:], b.GetNumber())])
	field(b.GetPreviousHash())
	field(b.GetDataHash())
	return h.Sum(nil)
}

// block is a verified block together with the envelope it travels in.
type block struct {
	env  *wire.Envelope
	msg  *wire.Block
	hash []byte // BlockHash(msg)
	size int    // encoded size of env
}

// ledger is one channel's block state: the height (the next number to
// deliver), the delivered blocks still inside the pull window, and blocks that
// arrived ahead of a gap. It is a pure data structure; the node serialises
// access to it.
type ledger struct {
	height   uint64 // the next number to deliver
	lastHash []byte // BlockHash of block height-1
	window   uint64 // delivered blocks kept to serve pull
	maxAhead uint64 // a block numbered height+maxAhead or more is refused
	blocks   map[uint64]*block
}

func newLedger(window, maxAhead int) *ledger {
	return &ledger{window: uint64(window), maxAhead: uint64(maxAhead), blocks: make(map[uint64]*block)}
}

// check says whether a block numbered n would be accepted: errDuplicate when it
// was delivered or is held, errTooFarAhead when it is beyond what the ledger
// buffers. It is the cheap dedup step, run before any signature check.
func (l *ledger) check(n uint64) error {
	switch {
	case n < l.height:
		return errDuplicate
	case n-l.height >= l.maxAhead:
		return errTooFarAhead
	case l.blocks[n] != nil:
		return errDuplicate
	}
	return nil
}

// add stores b (which must have passed check and verification) and returns
// the blocks now ready for delivery, in order, without delivering them: the
// node persists them first and then commits. A block whose previous hash does
// not match the chain is discarded and reported in broken, so the node can
// count it; the gap it leaves is filled by pull.
func (l *ledger) add(b *block) (ready []*block, broken []*block) {
	l.blocks[b.msg.GetNumber()] = b
	return l.ready()
}

// ready returns the run of held blocks that continues the delivered chain.
func (l *ledger) ready() (run []*block, broken []*block) {
	prev, n := l.lastHash, l.height
	for {
		next := l.blocks[n]
		if next == nil {
			break
		}
		if n > 0 && prev != nil && !bytes.Equal(next.msg.GetPreviousHash(), prev) {
			delete(l.blocks, n)
			broken = append(broken, next)
			break
		}
		run = append(run, next)
		prev = next.hash
		n++
	}
	return run, broken
}

// commit delivers run, which ready returned: the height moves past it and
// blocks that fell out of the window are evicted.
func (l *ledger) commit(run []*block) {
	if len(run) == 0 {
		return
	}
	l.lastHash = run[len(run)-1].hash
	l.height += uint64(len(run))
	if l.height > l.window {
		for n := range l.blocks {
			if n < l.height-l.window {
				delete(l.blocks, n)
			}
		}
	}
}

// numbers returns the block numbers held, ascending.
func (l *ledger) numbers() []uint64 {
	return slices.Sorted(maps.Keys(l.blocks))
}

// digest returns the numbers held as ranges.
func (l *ledger) digest() []*wire.Range {
	return toRanges(l.numbers())
}

// missing returns the numbers in remote's digest that this ledger would accept,
// at most limit of them, ascending.
func (l *ledger) missing(remote []*wire.Range, limit int) []uint64 {
	var out []uint64
	for _, r := range remote {
		first := max(r.First, l.height)
		if first > r.Last {
			continue
		}
		eachNumber([]*wire.Range{{First: first, Last: r.Last}}, limit-len(out), func(n uint64) bool {
			if n-l.height >= l.maxAhead {
				return false
			}
			if l.blocks[n] == nil {
				out = append(out, n)
			}
			return true
		})
		if len(out) >= limit {
			break
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// get returns held blocks named by rs, in request order, stopping at maxCount
// blocks or before maxBytes of envelopes (but always at least one block when
// one is held, so a single large block can still travel). A delivered block
// that fell out of the window is asked of load, when load is not nil.
func (l *ledger) get(rs []*wire.Range, maxCount, maxBytes int, load func(uint64) *block) []*block {
	var out []*block
	bytes := 0
	eachNumber(rs, maxCount*4, func(n uint64) bool {
		b := l.blocks[n]
		if b == nil && load != nil && n < l.height {
			b = load(n)
		}
		if b == nil {
			return true
		}
		if len(out) > 0 && bytes+b.size > maxBytes {
			return false
		}
		out = append(out, b)
		bytes += b.size
		return len(out) < maxCount
	})
	return out
}
