// Package batching is fabgossip's push emitter: it collects outgoing messages
// and hands them, in batches, to a send function that routes them to peers.
//
// It reproduces Hyperledger Fabric's batchingEmitter (gossip/gossip/batcher.go):
// each message is handed over Iterations times, in successive flushes, and then
// dropped; a flush happens every Latency, and at once when BurstSize messages
// are waiting. It fixes what Fabric gets wrong: the send function never runs
// under a lock, Close stops the flush goroutine and waits for it, the buffer is
// bounded, messages are typed, and a newer message can supersede a buffered one.
//
// The package is two layers, in the manner of etcd-raft and memberlist's
// TransmitLimitedQueue:
//
//	callers ── Add(Item) ──► Emitter[T] ── mu ──► Queue[T]   (pure: rules, no time)
//	                             ▲                   │
//	        ticker (Latency) ────┤                   │ Take, under mu
//	        burst (BurstSize) ───┘                   ▼
//	                         flush goroutine ── send(batch)   (no lock held)
//
// Queue is pure: no goroutines, no clock, no locks. Push adds or replaces,
// Take returns one batch within the byte budget and counts iterations down,
// Invalidate removes by key. Every rule of the package lives there and is
// tested without time.
//
// Emitter is the thin shell: one goroutine owns a ticker, swaps a batch out of
// the Queue under the mutex, unlocks, and calls send. Exactly one goroutine
// ever calls send, so send needs no locking of its own.
//
// Keys. An Item with a non-empty Key supersedes the buffered Item with the same
// Key (a newer StateInfo of the same peer and channel replaces the queued one):
// the new message takes the old one's place in line and its iteration count
// starts again. Keeping the place means a key that is refreshed often is never
// pushed behind newer traffic by the byte budget.
//
// Budget. With MaxBatchBytes set, a batch is the longest prefix of the queue
// whose sizes fit the budget; a message larger than the budget goes alone. A
// batch is never reordered, so messages are handed over in insertion order.
package batching
