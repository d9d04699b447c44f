package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"time"

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
//
// A chunked block's data hash is its chunk root, which binds its sizes
// already; its chunk size and data size are hashed after the data hash as
// well, so the hash itself says the block is chunked. A single-frame
// block's hash is what it always was.
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
	if len(b.GetChunkHashes()) > 0 {
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(b.GetChunkSize()))])
		h.Write(buf[:binary.PutUvarint(buf[:], b.GetDataSize())])
	}
	return h.Sum(nil)
}

// block is a verified block together with the envelope it travels in.
type block struct {
	env  *wire.Envelope
	msg  *wire.Block // its byte fields alias env.Payload: the data is held once
	hash []byte      // BlockHash(msg)
	size int         // encoded size of env
	// at is when this peer accepted or published the block, by its clock;
	// zero for a block read back from the store. Pull leaves blocks younger
	// than Config.PullGrace to push.
	at time.Time
	// chunks is the data of a chunked block, assembling or complete; nil
	// for a single-frame block, whose data is in msg. Guarded by the
	// channel's lock.
	chunks *chunkedBlock
	// done, when not nil, learns the outcome of persisting the block: nil
	// once it is durable and delivered, the store's error otherwise. Publish
	// waits on it; received blocks have none.
	done chan error
}

// ledger is one channel's block state: the height (the next number to
// deliver), the delivered blocks still inside the pull window, and blocks that
// arrived ahead of a gap. It is a pure data structure; the node serialises
// access to it.
//
// Between arrival and delivery a block is staged: handed to the channel's
// persistence writer, which makes it durable and only then commits it. The
// ledger therefore has two heights: staged (the next number to hand to the
// writer) and height (the next number to deliver), staged >= height.
type ledger struct {
	height     uint64 // the next number to deliver
	lastHash   []byte // BlockHash of block height-1
	staged     uint64 // the next number to stage; blocks below it are staged or delivered
	stagedHash []byte // BlockHash of block staged-1
	window     uint64 // delivered blocks kept to serve pull
	maxAhead   uint64 // a block numbered height+maxAhead or more is refused
	// chunkedWindow caps the data bytes of delivered chunked blocks kept
	// in blocks (Config.MaxChunkedWindowBytes).
	chunkedWindow int
	blocks        map[uint64]*block
}

func newLedger(window, maxAhead int) *ledger {
	return &ledger{window: uint64(window), maxAhead: uint64(maxAhead), chunkedWindow: math.MaxInt, blocks: make(map[uint64]*block)}
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
// the blocks now ready to be staged, in order, without staging them. A block
// whose previous hash does not match the chain is discarded and reported in
// broken, so the node can count it; the gap it leaves is filled by pull.
func (l *ledger) add(b *block) (ready []*block, broken []*block) {
	l.blocks[b.msg.GetNumber()] = b
	return l.ready()
}

// restore sets both heights to h, whose last block hashes to last: where a
// restarted peer's store left off.
func (l *ledger) restore(h uint64, last []byte) {
	l.height, l.lastHash = h, last
	l.staged, l.stagedHash = h, last
}

// ready returns the run of held blocks that continues the staged chain.
func (l *ledger) ready() (run []*block, broken []*block) {
	prev, n := l.stagedHash, l.staged
	for {
		next := l.blocks[n]
		if next == nil || !next.complete() {
			break // a chunked block is staged once all its chunks are in
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

// stage marks run, which ready returned, as handed to the writer: the next
// ready starts after it.
func (l *ledger) stage(run []*block) {
	if len(run) == 0 {
		return
	}
	l.stagedHash = run[len(run)-1].hash
	l.staged += uint64(len(run))
}

// unstage takes back everything staged but not committed, after the writer
// failed to persist it: the blocks stay held, and the next ready offers them
// again.
func (l *ledger) unstage() {
	l.staged, l.stagedHash = l.height, l.lastHash
}

// commit delivers run, the oldest staged blocks, now durable: the height
// moves past it and blocks that fell out of the window are evicted.
func (l *ledger) commit(run []*block) {
	if len(run) == 0 {
		return
	}
	l.lastHash = run[len(run)-1].hash
	l.height += uint64(len(run))
	if l.staged < l.height { // committed without staging (tests)
		l.staged, l.stagedHash = l.height, l.lastHash
	}
	if l.height > l.window {
		for n := range l.blocks {
			if n < l.height-l.window {
				delete(l.blocks, n)
			}
		}
	}
	l.evictChunked()
}

// evictChunked drops the oldest delivered chunked blocks from memory while
// their data exceeds chunkedWindow, keeping the newest.
func (l *ledger) evictChunked() {
	var nums []uint64
	total := 0
	for n, b := range l.blocks {
		if n < l.height && b.chunks != nil {
			nums = append(nums, n)
			total += b.chunks.size()
		}
	}
	if total <= l.chunkedWindow {
		return
	}
	slices.Sort(nums)
	for _, n := range nums[:len(nums)-1] {
		total -= l.blocks[n].chunks.size()
		delete(l.blocks, n)
		if total <= l.chunkedWindow {
			return
		}
	}
}

// numbers returns the block numbers held, ascending.
func (l *ledger) numbers() []uint64 {
	return slices.Sorted(maps.Keys(l.blocks))
}

// digest returns the numbers held as ranges, leaving out the blocks that
// arrived after settled (none when settled is zero) and chunked blocks still
// assembling, which only a chunk request can serve.
func (l *ledger) digest(settled time.Time) []*wire.Range {
	var nums []uint64
	for n, b := range l.blocks {
		if settledBy(b, settled) && b.complete() {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return toRanges(nums)
}

// settledBy reports whether b arrived at or before settled; every block
// has when settled is zero.
func settledBy(b *block, settled time.Time) bool {
	return settled.IsZero() || !b.at.After(settled)
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

// slot is one block a fetch may return: held in memory (b), or delivered
// and evicted from the window, to be read back from the store (b == nil).
type slot struct {
	num uint64
	b   *block
}

// slots returns, in request order, the numbers of rs that this ledger holds
// or has delivered, visiting at most maxVisit numbers; a held block that
// arrived after settled (when it is not zero) is left out. It is the part
// of serving a fetch that needs the ledger's lock; reading evicted blocks
// from the store and applying the byte budget happen after it is released.
func (l *ledger) slots(rs []*wire.Range, maxVisit int, fromStore bool, settled time.Time) []slot {
	var out []slot
	eachNumber(rs, maxVisit, func(n uint64) bool {
		switch b := l.blocks[n]; {
		case b != nil:
			if settledBy(b, settled) && b.complete() {
				out = append(out, slot{n, b})
			}
		case fromStore && n < l.height:
			out = append(out, slot{n, nil})
		}
		return true
	})
	return out
}

// take returns the blocks of slots in order, loading evicted ones with load
// (which may be nil, or return nil for a block it lacks), stopping at
// maxCount blocks or before maxBytes of envelopes, but always returning at
// least one block when one is available, so a single large block still
// travels.
func take(slots []slot, maxCount, maxBytes int, load func(uint64) *block) []*block {
	var out []*block
	bytes := 0
	for _, s := range slots {
		b := s.b
		if b == nil && load != nil {
			b = load(s.num)
		}
		if b == nil {
			continue
		}
		if len(out) > 0 && bytes+b.size > maxBytes {
			break
		}
		out = append(out, b)
		bytes += b.size
		if len(out) >= maxCount {
			break
		}
	}
	return out
}
