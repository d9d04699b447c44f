// Package transport is fabgossip's wire: framing, signing, and the three
// libp2p protocols. It knows peers and bytes, not orgs or channels; what to
// send to whom is decided by the routing package and the node.
//
//	sender                                             receiver
//	──────                                             ────────
//	Send(p, batch) ──► per-peer queue (bounded; full: ErrQueueFull)
//	                      │ one writer goroutine per peer
//	                      ▼
//	                AppendFrame: uvarint len │ Batch      (≤ MaxFrameSize)
//	                      │ one Write, write deadline
//	                      ▼
//	  /fabgossip/push/1.0.0: one long-lived write-only stream ──► FrameReader (capped)
//	                                                            │ decode Batch
//	                                                            ▼
//	                                          PushHandler(from, batch), one stream at a time
//
//	Pull(ctx, p, req) / Hello(ctx, p, hello):   one short stream per exchange
//	  client: write request │ CloseWrite │ read one capped response │ Close
//	  server: read one capped request │ handler(ctx, from, req) │ write response │ Close
//
// Every stream ends in Close or Reset. A malformed or oversized frame resets
// only its stream and is reported to the Tracer. A failed push stream is
// reset, the frame counted as dropped, and the stream reopened after an
// exponential backoff. A peer's writer exits when the peer disconnects, on
// ClosePeer, or after Config.IdleTimeout without traffic.
//
// Envelopes are signed by their originator's Ed25519 libp2p key over exactly
// the payload bytes (Sign, SignSecret) and verified over the bytes received
// (Open, OpenSecret), so forwarders pass them on untouched.
//
// The same code runs on real hosts (TCP, QUIC) and on mocknet hosts; mocknet
// ignores deadlines, so there only contexts and Close unblock a stuck stream.
package transport
