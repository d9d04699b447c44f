package chunk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/bits"
)

// Assembly collects the chunks of one in-flight block against its verified
// commitment. It holds the block once, in one buffer of DataSize bytes
// allocated when the first chunk arrives: chunks are copied into place when
// they arrive and then verified where they lie, so what was checked is what
// is kept. A held chunk is never written again.
//
// An Assembly is not safe for concurrent use; the slices Chunk and Data
// return may be read concurrently with later calls, since held bytes never
// change.
type Assembly struct {
	c    Commitment
	buf  []byte   // nil until the first chunk; then c.DataSize() bytes
	have []uint64 // bit i: chunk i is held
	held int
}

// NewAssembly returns an empty Assembly for c, which must be valid: a
// header's commitment, verified.
func NewAssembly(c Commitment) (*Assembly, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%w: zero Commitment", ErrBadCommitment)
	}
	return &Assembly{c: c, have: make([]uint64, (c.count+63)/64)}, nil
}

// Assembled returns a complete Assembly over data, checking every chunk of
// it against c, for a peer that holds a block whole (its publisher, or a
// block read back from its store) and serves it like any other. The
// Assembly aliases data, which the caller must not change.
func Assembled(c Commitment, data []byte) (*Assembly, error) {
	a, err := NewAssembly(c)
	if err != nil {
		return nil, err
	}
	if len(data) != c.dataSize {
		return nil, fmt.Errorf("%w: %d bytes of data, the commitment is to %d", ErrLength, len(data), c.dataSize)
	}
	for i := range c.count {
		if h := sha256.Sum256(c.Chunk(data, i)); !bytes.Equal(h[:], c.hashes[i*HashSize:(i+1)*HashSize]) {
			return nil, fmt.Errorf("%w: chunk %d", ErrTampered, i)
		}
	}
	a.buf = data
	for i := range a.have {
		a.have[i] = ^uint64(0)
	}
	a.held = c.count
	return a, nil
}

// Commitment returns the commitment the Assembly checks against.
func (a *Assembly) Commitment() *Commitment { return &a.c }

// Add verifies chunk i and stores it, in this order: the index is in range,
// the length is the one the header implies, the chunk is not held already
// (a duplicate is neither hashed nor stored), its SHA-256 is the header's.
// The first failed check rejects the chunk with ErrOutOfRange, ErrLength or
// ErrTampered, and nothing changes. data is copied; the caller may reuse it.
func (a *Assembly) Add(i int, data []byte) (Result, error) {
	if i < 0 || i >= a.c.count {
		return Rejected, fmt.Errorf("%w: chunk %d of %d", ErrOutOfRange, i, a.c.count)
	}
	s, e := a.c.Bounds(i)
	if len(data) != e-s {
		return Rejected, fmt.Errorf("%w: chunk %d of %d bytes, want %d", ErrLength, i, len(data), e-s)
	}
	if a.Have(i) {
		return Duplicate, nil
	}
	if a.buf == nil {
		a.buf = make([]byte, a.c.dataSize)
	}
	dst := a.buf[s:e]
	copy(dst, data)
	if h := sha256.Sum256(dst); !bytes.Equal(h[:], a.c.hashes[i*HashSize:(i+1)*HashSize]) {
		return Rejected, fmt.Errorf("%w: chunk %d", ErrTampered, i)
	}
	a.have[i/64] |= 1 << (i % 64)
	a.held++
	if a.held == a.c.count {
		return Completed, nil
	}
	return Added, nil
}

// Have reports whether chunk i is held (verified); false for an index out
// of range.
func (a *Assembly) Have(i int) bool {
	return i >= 0 && i < a.c.count && a.have[i/64]&(1<<(i%64)) != 0
}

// Held returns the number of chunks held.
func (a *Assembly) Held() int { return a.held }

// Complete reports whether every chunk is held.
func (a *Assembly) Complete() bool { return a.held == a.c.count }

// Chunk returns chunk i if it is held, aliasing the Assembly's buffer
// (capacity clipped, so an append cannot spill into the next chunk): a
// relay forwards it as soon as Add accepted it, before the block is
// complete, without a copy.
func (a *Assembly) Chunk(i int) ([]byte, bool) {
	if !a.Have(i) {
		return nil, false
	}
	return a.c.Chunk(a.buf, i), true
}

// Data returns the block's data once it is complete, aliasing the buffer.
func (a *Assembly) Data() ([]byte, bool) {
	if !a.Complete() {
		return nil, false
	}
	return a.buf[:a.c.dataSize:a.c.dataSize], true
}

// Missing returns the chunks not held, as ascending ranges: what to pull.
// There are at most Held()+1 of them.
func (a *Assembly) Missing() []Range { return a.ranges(false) }

// Ranges returns the chunks held, as ascending ranges: what this peer can
// serve before the block is complete. There are at most Count()-Held()+1.
func (a *Assembly) Ranges() []Range { return a.ranges(true) }

// ranges lists the runs of chunks whose held bit is held, a word at a time
// over full and empty words.
func (a *Assembly) ranges(held bool) []Range {
	var out []Range
	for w, word := range a.have {
		if !held {
			word = ^word
		}
		base := w * 64
		if w == len(a.have)-1 && a.c.count%64 != 0 {
			word &= 1<<(a.c.count%64) - 1 // bits past the last chunk
		}
		for word != 0 {
			lo := bits.TrailingZeros64(word)
			run := bits.TrailingZeros64(^(word >> lo)) // ones from lo; 64 when all
			if k := len(out); k > 0 && out[k-1].Last+1 == base+lo {
				out[k-1].Last = base + lo + run - 1
			} else {
				out = append(out, Range{base + lo, base + lo + run - 1})
			}
			if lo+run >= 64 {
				break
			}
			word &^= (1<<run - 1) << lo
		}
	}
	return out
}
