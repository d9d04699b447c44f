package chunk

import "errors"

// Errors that callers test for with errors.Is. Every error this package
// returns wraps exactly one of them, with the numbers that broke the rule.
var (
	// ErrNotChunked: the block is a single-frame block (no chunk hashes);
	// its data hash is SHA-256 of its data, which the caller checks.
	ErrNotChunked = errors.New("chunk: block is not chunked")
	// ErrTooLarge: the header commits to more data than Limits.MaxDataSize.
	// A peer whose limits are lower than the publisher's refuses it without
	// the header being forged.
	ErrTooLarge = errors.New("chunk: data size over the limit")
	// ErrBadCommitment: the header's commitment is malformed or does not
	// match its root: chunk size out of bounds, wrong chunk count, a hash
	// that is not 32 bytes, data beside chunk hashes, or a root mismatch.
	ErrBadCommitment = errors.New("chunk: bad commitment")

	// The three ways Assembly.Add refuses a chunk. Each is evidence against
	// the sender: an honest peer sends only chunks it verified against the
	// same header, named by its block hash.

	// ErrOutOfRange: the index is not that of a chunk of the block.
	ErrOutOfRange = errors.New("chunk: index out of range")
	// ErrLength: the chunk is not as long as the header says chunk index is
	// (chunk size, or the remainder for the last chunk): truncated or
	// extended.
	ErrLength = errors.New("chunk: wrong length")
	// ErrTampered: the chunk's SHA-256 differs from the header's hash for
	// its index.
	ErrTampered = errors.New("chunk: hash mismatch")
)

// Result is what Assembly.Add did with a chunk.
type Result uint8

const (
	// Rejected: the chunk was refused; the error says why (ErrOutOfRange,
	// ErrLength or ErrTampered) and nothing was stored.
	Rejected Result = iota
	// Added: the chunk was verified and stored; forward it.
	Added
	// Completed: as Added, and it was the last missing chunk, so the block
	// is complete. Exactly one Add of an Assembly returns Completed.
	Completed
	// Duplicate: the chunk was held already. Nothing was stored, hashed or
	// is to be forwarded; not evidence of misbehaviour (several senders race
	// on purpose), but a hint that the link is redundant.
	Duplicate
)

// String names r.
func (r Result) String() string {
	switch r {
	case Rejected:
		return "rejected"
	case Added:
		return "added"
	case Completed:
		return "completed"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}
