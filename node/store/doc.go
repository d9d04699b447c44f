// Package store keeps a peer's delivered blocks and channel state across
// restarts: per channel, the gapless sequence of blocks 0..Height-1 as the
// node delivered them, and whether the peer joined or left the channel.
//
//	node ledger ──deliver run n..m──► Store.AppendBatch(ch, blocks n..m)   one transaction
//	            ◄──Height, LastHash── at start: resume delivery at Height, chain to LastHash
//	pull / catch-up ──Range(ch, from, maxCount, maxBytes)──► bounded, ascending envelopes
//	channel join/leave ──PutChannelState──►  ChannelStates at start
//
// The store knows bytes, not blocks: it takes the encoded wire.Envelope and
// its BlockHash from the ledger, which has verified both, and never parses
// them. It enforces only what makes the prefix property hold: a channel's
// next block must carry number Height (ErrOutOfOrder otherwise).
//
// # Implementations
//
// Bolt is the durable store: one bbolt (go.etcd.io/bbolt) file, blocks.db, in
// the peer's data directory.
//
//	blocks.db
//	├── meta      format → 1
//	├── channels  <channel> → state record
//	└── blocks
//	    └── <channel>   8-byte big-endian number → block record
//
// Each record carries a CRC32C over its content, its channel and its number
// (record.go), checked on every read. Memory is the same contract in memory,
// for tests and peers that need no durability; one conformance suite runs
// against both.
//
// # Crash safety
//
// bbolt commits copy-on-write: a transaction writes new pages, fsyncs them,
// then switches the meta page, so a crash at any point leaves the previous
// or the new state, never a mix. An Append or AppendBatch is one transaction
// and is durable when it returns; a batch is stored all or not at all. With
// WithNoSync the fsync is skipped: the process may still die at any moment
// (the written pages are in the operating system's cache), only an OS crash
// or power loss may lose recent commits. Open checks anyway: it walks every
// channel's keys, checksums the newest records (WithVerifyTail), and cuts a
// channel back at the first missing or corrupt block, so the store always
// holds a prefix and Height is where appending resumes. bbolt panics on some
// damaged pages; every call runs under a guard that turns a panic (and a
// fault in the memory map) into ErrCorrupt and marks the store broken. The
// crash test kills a writer process with SIGKILL at random moments and checks
// all of this on the real file.
//
// # Why bbolt, not Pebble
//
// Measured on this machine (2 shared cores, virtual disk), median of three
// runs, `go test -run '^$' -bench . -count=3 ./node/store/`, against the
// same workload written directly against Pebble v2.1.7 with pebble.Sync:
//
//	                               bbolt (this store)     Pebble (raw)
//	Append 4 KiB, fsync            1,116 blocks/s           2,764 blocks/s
//	AppendBatch 10×4 KiB, fsync    6,460 blocks/s          22,991 blocks/s
//	Append 128 KiB, fsync            389 blocks/s  51 MB/s  1,373 blocks/s 180 MB/s
//	AppendBatch 10×128 KiB, fsync  1,019 blocks/s 134 MB/s  1,891 blocks/s 248 MB/s
//	Range 4 KiB                  273,000 blocks/s 1.1 GB/s  104,000 blocks/s 425 MB/s
//	Range 128 KiB                  8,458 blocks/s 1.1 GB/s    6,035 blocks/s 791 MB/s
//
// Pebble appends 2.5–3.5 times faster (one WAL fsync against bbolt's two per
// commit); bbolt serves ranges 1.4–2.6 times faster (reads straight from its
// memory map). Both append far faster than gossip delivers blocks, and the
// node delivers runs, which AppendBatch turns into one commit. bbolt wins on
// what matters more here: a single file with no recovery step and no
// background goroutines, a file lock that keeps two peers off one directory
// (ErrLocked), faster catch-up serving, and one small dependency where
// Pebble brings some thirty modules.
//
// Without fsync (WithNoSync) bbolt appends 8,221 blocks/s (4 KiB, single) and
// 20,042 blocks/s (10×4 KiB batches).
//
// Disk use is about 1.0–1.15 times the envelope bytes for blocks of 4 KB and
// more, up to 1.5 times for sizes just above a 4 KiB page, and about 2 times
// for small blocks appended one at a time (bbolt keeps at least two records
// per leaf page).
package store
