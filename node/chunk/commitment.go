package chunk

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// HashSize is the size of a chunk hash and of the root: SHA-256.
const HashSize = sha256.Size

// rootTag starts the root's preimage, so that the root of a chunked block
// is not the SHA-256 of a hash list anyone else computes.
const rootTag = "fabgossip/chunk-root/v1\x00"

// Hard ceilings on Limits, whatever a configuration says: an Assembly holds
// the data in one buffer indexed by int (even where int has 32 bits), a
// chunk travels in one frame (libp2p's 4 MiB message cap), and the header
// carries 32 bytes per chunk in one frame too.
const (
	ceilingDataSize  = 1<<31 - 1
	ceilingChunkSize = 4 << 20
	ceilingChunks    = 1 << 16
)

// Defaults of Limits. DefaultMaxChunks lets a block of DefaultMaxDataSize be
// cut in chunks as small as DefaultMinChunkSize; its hash list is then
// 128 KiB.
const (
	DefaultMaxDataSize  = 64 << 20
	DefaultMinChunkSize = 16 << 10
	DefaultMaxChunkSize = 1 << 20
	DefaultMaxChunks    = DefaultMaxDataSize / DefaultMinChunkSize
)

// DefaultChunkSize is the chunk size a publisher should use. Add runs at
// the speed of SHA-256 from 16 KiB to 1 MiB alike (about 1.4 GB/s against
// 1.6 GB/s for the hash alone, on one core with SHA-NI), so the choice is
// the network's: a relay forwards a chunk once it holds all of it, so each
// hop adds a chunk's transfer time (2.6 ms for 32 KiB at 100 Mbit/s, 21 ms
// for 256 KiB), and a stripe relay sends each chunk to the rest of its
// org (8 copies in the bench's orgs of 10), while each chunk costs 32
// bytes of header (64 KiB for a 64 MiB block at 32 KiB) and one message.
// On the bench at 1 MiB under 100 Mbit/s, 32 KiB cut T_full p50 by about a
// fifth against 64 KiB; 16 KiB was no faster and cost more CPU.
const DefaultChunkSize = 32 << 10

// Limits bound what a chunked header may claim. They are checked on the
// header's numbers before anything proportional to them is allocated or
// hashed.
type Limits struct {
	// MaxDataSize is the largest block, in bytes. An in-flight block holds
	// its whole data_size in memory, so this bounds memory per block.
	MaxDataSize uint64
	// MinChunkSize and MaxChunkSize bound chunk_size. A smaller chunk cuts
	// the delay a relay adds (it forwards a chunk once it holds all of it)
	// but costs 32 bytes of header and one message per chunk; a chunk must
	// fit a frame beside its framing.
	MinChunkSize uint32
	MaxChunkSize uint32
	// MaxChunks caps the chunk count, and with it the header's hash list
	// and the work of checking its root. With MaxChunkSize it must allow a
	// block of MaxDataSize.
	MaxChunks int
}

// DefaultLimits returns 64 MiB blocks in chunks of 16 KiB to 1 MiB, at
// most 4096 of them.
func DefaultLimits() Limits {
	return Limits{
		MaxDataSize:  DefaultMaxDataSize,
		MinChunkSize: DefaultMinChunkSize,
		MaxChunkSize: DefaultMaxChunkSize,
		MaxChunks:    DefaultMaxChunks,
	}
}

// Validate reports the first field of l out of bounds, by name and value.
func (l Limits) Validate() error {
	switch {
	case l.MaxDataSize < 1 || l.MaxDataSize > ceilingDataSize:
		return fmt.Errorf("chunk: Limits.MaxDataSize %d: want 1 to %d", l.MaxDataSize, ceilingDataSize)
	case l.MinChunkSize < 1:
		return fmt.Errorf("chunk: Limits.MinChunkSize %d: want at least 1", l.MinChunkSize)
	case l.MaxChunkSize < l.MinChunkSize || l.MaxChunkSize > ceilingChunkSize:
		return fmt.Errorf("chunk: Limits.MaxChunkSize %d: want MinChunkSize (%d) to %d", l.MaxChunkSize, l.MinChunkSize, ceilingChunkSize)
	case l.MaxChunks < 1 || l.MaxChunks > ceilingChunks:
		return fmt.Errorf("chunk: Limits.MaxChunks %d: want 1 to %d", l.MaxChunks, ceilingChunks)
	case uint64(l.MaxChunkSize)*uint64(l.MaxChunks) < l.MaxDataSize:
		return fmt.Errorf("chunk: Limits.MaxChunks %d: %d chunks of MaxChunkSize %d cannot hold MaxDataSize %d",
			l.MaxChunks, l.MaxChunks, l.MaxChunkSize, l.MaxDataSize)
	}
	return nil
}

// Geometry checks chunkSize and dataSize against l and returns the chunk
// count, ceil(dataSize / chunkSize). It costs a few comparisons, so a
// caller runs it on untrusted numbers before anything else.
func (l Limits) Geometry(chunkSize uint32, dataSize uint64) (count int, err error) {
	switch {
	case dataSize == 0:
		return 0, fmt.Errorf("%w: data_size 0", ErrBadCommitment)
	case dataSize > l.MaxDataSize || dataSize > ceilingDataSize:
		return 0, fmt.Errorf("%w: data_size %d, limit %d", ErrTooLarge, dataSize, l.MaxDataSize)
	case chunkSize == 0 || chunkSize < l.MinChunkSize || chunkSize > l.MaxChunkSize || chunkSize > ceilingChunkSize:
		return 0, fmt.Errorf("%w: chunk_size %d, want %d to %d", ErrBadCommitment, chunkSize, l.MinChunkSize, l.MaxChunkSize)
	}
	n := (dataSize + uint64(chunkSize) - 1) / uint64(chunkSize) // no overflow: both are below 2^32
	if n > uint64(l.MaxChunks) || n > ceilingChunks {
		return 0, fmt.Errorf("%w: %d chunks of %d bytes, limit %d", ErrBadCommitment, n, chunkSize, l.MaxChunks)
	}
	return int(n), nil
}

// Commitment is a validated chunk commitment: the geometry of a block's
// data and the hash of each chunk, with the root that binds them. Only
// Commit, Verify and FromBlock make one, so a Commitment always satisfies
// the Limits it was made under. It is immutable and safe to share.
type Commitment struct {
	chunkSize uint32
	dataSize  int
	count     int
	hashes    []byte // count * HashSize: chunk i's hash at i*HashSize
	root      [HashSize]byte
}

// Commit cuts data into chunks of chunkSize bytes (the last one shorter
// when chunkSize does not divide len(data)), hashes them and returns the
// commitment a publisher signs. It refuses what receivers under lim would
// refuse.
func Commit(data []byte, chunkSize uint32, lim Limits) (Commitment, error) {
	n, err := lim.Geometry(chunkSize, uint64(len(data)))
	if err != nil {
		return Commitment{}, err
	}
	c := Commitment{chunkSize: chunkSize, dataSize: len(data), count: n, hashes: make([]byte, n*HashSize)}
	for i := range n {
		h := sha256.Sum256(c.Chunk(data, i))
		copy(c.hashes[i*HashSize:], h[:])
	}
	c.root = root(chunkSize, uint64(len(data)), c.hashes)
	return c, nil
}

// Verify checks a header's claimed commitment under lim and returns it.
// The geometry is checked first, in constant time; then the hash count,
// before the hashes are copied (at most lim.MaxChunks of them) and the
// root recomputed over them. The hashes are copied: the Commitment does
// not alias the caller's buffers.
func Verify(chunkSize uint32, dataSize uint64, hashes [][]byte, claimedRoot []byte, lim Limits) (Commitment, error) {
	n, err := lim.Geometry(chunkSize, dataSize)
	if err != nil {
		return Commitment{}, err
	}
	if len(hashes) != n {
		return Commitment{}, fmt.Errorf("%w: %d chunk hashes, data_size %d in chunks of %d needs %d", ErrBadCommitment, len(hashes), dataSize, chunkSize, n)
	}
	if len(claimedRoot) != HashSize {
		return Commitment{}, fmt.Errorf("%w: root of %d bytes", ErrBadCommitment, len(claimedRoot))
	}
	for i, h := range hashes {
		if len(h) != HashSize {
			return Commitment{}, fmt.Errorf("%w: hash %d of %d bytes", ErrBadCommitment, i, len(h))
		}
	}
	c := Commitment{chunkSize: chunkSize, dataSize: int(dataSize), count: n, hashes: make([]byte, 0, n*HashSize)}
	for _, h := range hashes {
		c.hashes = append(c.hashes, h...)
	}
	c.root = root(chunkSize, dataSize, c.hashes)
	if !bytes.Equal(c.root[:], claimedRoot) {
		return Commitment{}, fmt.Errorf("%w: root mismatch", ErrBadCommitment)
	}
	return c, nil
}

// FromBlock reads and verifies the commitment of a chunked block header:
// ErrNotChunked for a single-frame block (no chunk hashes, no chunk
// geometry), which the caller checks the old way, and ErrBadCommitment for
// a header that mixes the two forms. It checks no signature: the caller
// verifies the envelope first.
func FromBlock(b *wire.Block, lim Limits) (Commitment, error) {
	if len(b.GetChunkHashes()) == 0 {
		if b.GetChunkSize() != 0 || b.GetDataSize() != 0 {
			return Commitment{}, fmt.Errorf("%w: chunk_size %d and data_size %d without chunk hashes", ErrBadCommitment, b.GetChunkSize(), b.GetDataSize())
		}
		return Commitment{}, ErrNotChunked
	}
	if len(b.GetData()) != 0 {
		return Commitment{}, fmt.Errorf("%w: %d bytes of data beside chunk hashes", ErrBadCommitment, len(b.GetData()))
	}
	return Verify(b.GetChunkSize(), b.GetDataSize(), b.GetChunkHashes(), b.GetDataHash(), lim)
}

// Fill makes b the header of c: it sets the chunk fields and the data hash
// to the root, and clears the data. b's chunk hashes alias c, which never
// changes them.
func (c *Commitment) Fill(b *wire.Block) {
	b.Data = nil
	b.DataHash = append([]byte(nil), c.root[:]...)
	b.ChunkSize = c.chunkSize
	b.DataSize = uint64(c.dataSize)
	b.ChunkHashes = make([][]byte, c.count)
	for i := range c.count {
		b.ChunkHashes[i] = c.hashes[i*HashSize : (i+1)*HashSize : (i+1)*HashSize]
	}
}

// root computes the root of a hash list (see wire.Block.data_hash).
func root(chunkSize uint32, dataSize uint64, hashes []byte) [HashSize]byte {
	var geo [4 + 8]byte
	binary.BigEndian.PutUint32(geo[:4], chunkSize)
	binary.BigEndian.PutUint64(geo[4:], dataSize)
	h := sha256.New()
	h.Write([]byte(rootTag))
	h.Write(geo[:])
	h.Write(hashes)
	var r [HashSize]byte
	h.Sum(r[:0])
	return r
}

// Valid reports whether c was made by Commit, Verify or FromBlock (the zero
// Commitment is not).
func (c *Commitment) Valid() bool { return c.count > 0 }

// ChunkSize returns the size of every chunk but the last.
func (c *Commitment) ChunkSize() uint32 { return c.chunkSize }

// DataSize returns the size of the data.
func (c *Commitment) DataSize() int { return c.dataSize }

// Count returns the number of chunks.
func (c *Commitment) Count() int { return c.count }

// Root returns the root, the data hash of the header.
func (c *Commitment) Root() [HashSize]byte { return c.root }

// Hash returns the hash of chunk i, 0 <= i < Count().
func (c *Commitment) Hash(i int) [HashSize]byte {
	return [HashSize]byte(c.hashes[i*HashSize : (i+1)*HashSize])
}

// Bounds returns where chunk i, 0 <= i < Count(), lies in the data: bytes
// start to end, exclusive.
func (c *Commitment) Bounds(i int) (start, end int) {
	start = i * int(c.chunkSize)
	return start, min(start+int(c.chunkSize), c.dataSize)
}

// Chunk returns chunk i of data, the complete data c commits to (a
// publisher's, or a stored block's), without copying: what a peer sends
// when it serves a block it holds whole.
func (c *Commitment) Chunk(data []byte, i int) []byte {
	s, e := c.Bounds(i)
	return data[s:e:e]
}
