package store

import (
	"errors"
	"fmt"
)

// Errors that callers test for with errors.Is. Every error a store returns
// for one of these conditions wraps the sentinel and adds the detail.
var (
	// ErrNotFound: the channel holds no block with that number.
	ErrNotFound = errors.New("store: block not found")
	// ErrOutOfOrder: an appended block's number is not the channel's height
	// (or a batch is not consecutive). Nothing of the call was stored.
	ErrOutOfOrder = errors.New("store: block out of order")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid: an argument is out of range (empty or oversized channel
	// name, hash or envelope, non-positive bounds). Nothing was stored.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrCorrupt: what the file holds fails a check (checksum, length,
	// format), or the database library panicked on it.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrLocked: another process holds the database file.
	ErrLocked = errors.New("store: database locked by another process")
)

// Limits on what a store accepts. They bound every read of a stored record
// as well, so a corrupt length can never make a decode allocate without bound.
const (
	// MaxChannelName is the longest channel name, in bytes.
	MaxChannelName = 255
	// MaxHashSize is the longest block hash, in bytes (BlockHash is 32).
	MaxHashSize = 64
	// MaxEnvelopeSize is the largest encoded envelope, in bytes: far above
	// the 4 MiB frame cap, and a chunked block of 64 MiB (its header, with
	// 32 bytes per chunk, and its data in one record) fits too.
	MaxEnvelopeSize = 65 << 20
)

// Store holds, per channel, the delivered blocks as a gapless sequence
// 0..Height-1 and the channel's state. Implementations are safe for
// concurrent use. Byte slices passed in are copied, and byte slices
// returned belong to the caller.
type Store interface {
	// Append stores block number of channel ch, whose BlockHash is hash and
	// whose encoded envelope is env. number must equal Height(ch), else
	// ErrOutOfOrder. The block is durable when Append returns (see the
	// implementation for its sync policy).
	Append(ch string, number uint64, hash, env []byte) error
	// AppendBatch stores consecutive blocks, the first numbered Height(ch),
	// all or none, in one transaction. An empty batch stores nothing.
	AppendBatch(ch string, blocks []Block) error
	// Height is the next number to append: 0 for an unknown or empty channel.
	Height(ch string) (uint64, error)
	// LastHash is the hash of block Height-1, nil for an empty channel.
	LastHash(ch string) ([]byte, error)
	// Get returns the envelope of block number, or ErrNotFound.
	Get(ch string, number uint64) ([]byte, error)
	// Range calls f with the blocks from number from upward, ascending,
	// stopping at the last block, after maxCount blocks, before the block
	// that would bring the envelopes' total over maxBytes (the first block is
	// always passed, so a single large block still travels), or when f
	// returns false. f runs after the store released every lock and may call
	// the store. A from at or above the height calls f never.
	Range(ch string, from uint64, maxCount, maxBytes int, f func(number uint64, env []byte) bool) error
	// PutChannelState records the state of channel ch, replacing the last.
	PutChannelState(ch string, st ChannelState) error
	// ChannelStates returns every recorded channel state by channel name.
	ChannelStates() (map[string]ChannelState, error)
	// Close releases the store; later calls return ErrClosed. Close is
	// idempotent.
	Close() error
}

// Block is one block of an AppendBatch.
type Block struct {
	Number   uint64
	Hash     []byte // BlockHash of the block, 1..MaxHashSize bytes
	Envelope []byte // the encoded wire.Envelope, 1..MaxEnvelopeSize bytes
}

// ChannelState is what a peer remembers about its membership of a channel
// across restarts.
type ChannelState struct {
	Joined bool // the peer joined the channel
	Left   bool // the peer left the channel (Fabric's StateInfo left flag)
}

// checkChannel validates a channel name.
func checkChannel(ch string) error {
	if ch == "" || len(ch) > MaxChannelName {
		return fmt.Errorf("%w: channel name of %d bytes, want 1..%d", ErrInvalid, len(ch), MaxChannelName)
	}
	return nil
}

// checkBatch validates a batch's arguments: the channel name, every hash and
// envelope, and that the numbers are consecutive. Whether the first number is
// the height is checked against the stored state.
func checkBatch(ch string, blocks []Block) error {
	if err := checkChannel(ch); err != nil {
		return err
	}
	for i, b := range blocks {
		if len(b.Hash) == 0 || len(b.Hash) > MaxHashSize {
			return fmt.Errorf("%w: block %d: hash of %d bytes, want 1..%d", ErrInvalid, b.Number, len(b.Hash), MaxHashSize)
		}
		if len(b.Envelope) == 0 || len(b.Envelope) > MaxEnvelopeSize {
			return fmt.Errorf("%w: block %d: envelope of %d bytes, want 1..%d", ErrInvalid, b.Number, len(b.Envelope), MaxEnvelopeSize)
		}
		if i > 0 && b.Number != blocks[i-1].Number+1 {
			return fmt.Errorf("%w: batch not consecutive: block %d follows %d", ErrOutOfOrder, b.Number, blocks[i-1].Number)
		}
	}
	return nil
}

// checkBounds validates Range's bounds.
func checkBounds(maxCount, maxBytes int, f func(uint64, []byte) bool) error {
	switch {
	case maxCount <= 0:
		return fmt.Errorf("%w: maxCount %d, want > 0", ErrInvalid, maxCount)
	case maxBytes <= 0:
		return fmt.Errorf("%w: maxBytes %d, want > 0", ErrInvalid, maxBytes)
	case f == nil:
		return fmt.Errorf("%w: nil range function", ErrInvalid)
	}
	return nil
}

// outOfOrder is the error for a batch whose first number is not the height.
func outOfOrder(ch string, got, height uint64) error {
	return fmt.Errorf("%w: channel %q: block %d, height is %d", ErrOutOfOrder, ch, got, height)
}
