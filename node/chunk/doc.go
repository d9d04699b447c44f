// Package chunk is the pure core of large blocks (issue #15): a block too
// big for one frame is published as a signed header that commits to its
// data in fixed-size chunks, and the chunks travel unsigned, each checked
// on arrival against the header. No clock, goroutine or network here;
// decisions in, data out, as in routing and batching.
//
// # The commitment
//
// Commit cuts the data into chunks of ChunkSize bytes (the last one
// shorter), hashes each with SHA-256 and computes the root over the hash
// list, with the sizes bound in:
//
//	root = SHA-256("fabgossip/chunk-root/v1" 0x00 ‖ chunk_size (4, BE) ‖ data_size (8, BE) ‖ h0 ‖ h1 ‖ … ‖ h(n-1))
//
// Commitment.Fill writes it into a wire.Block: chunk_size, data_size,
// chunk_hashes, data_hash = root and no data. The header carries the whole
// hash list (32 bytes per chunk, 32 KiB for 64 MiB at DefaultChunkSize),
// so a receiver checks any chunk alone with one hash and no proof, which a
// Merkle tree would need. Single-frame blocks leave the chunk fields unset
// and keep data_hash = SHA-256(data): their encoding is unchanged.
//
// FromBlock (or Verify) checks a received header under Limits, cheapest
// first: the sizes and the chunk count they imply in a few comparisons,
// then the hash count and lengths, and only then copies the list (at most
// MaxChunks hashes) and recomputes the root. Nothing proportional to an
// untrusted number is allocated before it is known to be within Limits.
//
// # Assembling
//
// An Assembly is one in-flight block. It holds the data once, in one buffer
// of data_size allocated at the first chunk, however many peers send the
// same chunks: Add checks the index, then the length, then drops a
// duplicate without hashing it, then copies the chunk into place and
// hashes it there (what was checked is what is kept). The result says
// Added, Completed (exactly once) or Duplicate; a refusal wraps
// ErrOutOfRange, ErrLength or ErrTampered, each evidence against the
// sender. Per-chunk slices were measured against the one buffer
// (BenchmarkAddPerChunk): they need a second copy of the block to hand it
// on whole, and were slower.
//
// Chunk(i) returns a held chunk from the buffer without a copy, so a relay
// forwards it the moment Add accepts it (cut-through); held bytes never
// change. Missing and Ranges list what is missing and held as ranges;
// Subtract and Assign turn Missing into bounded requests over the peers
// that hold the chunks, so a pull resumes by chunk from any of them.
//
// # How the node uses it
//
//  1. Publish: data over Config.ChunkThreshold is committed with Commit,
//     the header is signed and sent on the existing signed path (push,
//     tree, pull) like any block; the chunks follow as wire.BlockChunk in
//     Batch.chunks, named by the header's block hash, served from
//     Assembled(c, data).
//  2. Receive the header: the usual checks (dedup, signature, authority),
//     then FromBlock instead of the data hash check; an Assembly per
//     in-flight block, held in the ledger beside its header, within caps
//     on the assemblies under way; forward the header.
//  3. Receive a chunk: admit on channel and sender, find the header by
//     number and block hash (no header, no chunk), Add, score the sender
//     on a refusal, forward chunk i to every peer the header went to as
//     soon as Add accepts it.
//  4. Pull: when chunks stop arriving, Assign(Missing(), peers, budget)
//     and fetch those ranges (wire.ChunkRequest); peers serve the chunks
//     they hold, assembling or whole.
//  5. Completed: the block goes to the ledger, the store and the
//     application in order, exactly once, like a single-frame block.
package chunk
