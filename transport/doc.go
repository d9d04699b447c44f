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
//	  /fabgossip/push/1.0.0: one long-lived write-only stream ──► admission (WithAdmission)
//	                                                            │ FrameReader (capped)
//	                                                            │ count items (caps)
//	                                                            │ decode Batch in place
//	                                                            ▼
//	                                          PushHandler(from, batch), one stream at a time
//
//	Pull(ctx, p, req) / Hello(ctx, p, hello):   one short stream per exchange
//	  client: write request │ CloseWrite │ read one capped response │ count │ Close
//	  server: gate │ read one capped request │ count │ handler(ctx, from, req) │ write response │ Close
//
// A Batch carries envelopes and the dissemination tree's control entries
// (TreeControl: IHAVE, GRAFT, PRUNE per channel and root); a peer that
// predates the control skips it.
//
// Every read is bounded by size, count and time. A frame body is capped
// (MaxFrameSize; MaxHelloSize for hellos) before it is read, and its
// repeated fields are counted straight from the bytes against the count
// caps (MaxBatchEnvelopes and the others) before it is decoded, so its
// decoding cost is bounded by its size; a frame over a cap is refused with
// ErrTooManyItems. Senders refuse what the same caps would refuse.
//
// Nothing is read from a peer before it is admitted: the optional
// admission function is asked when an inbound push or pull stream opens,
// and a refused stream is reset unread (ErrorUnadmitted). ResetInbound
// resets the streams of a peer refused later. Hellos are never gated, so
// they are bounded instead: MaxInboundHellosPerPeer at a time per peer, and
// a hello must start arriving within HelloFirstByteTimeout.
//
// Every stream ends in Close or Reset. A malformed, oversized or
// over-count frame resets only its stream and is reported to the Tracer. A
// failed push stream is reset, the frame counted as dropped, and the stream
// reopened after an exponential backoff. A peer's writer exits when the
// peer disconnects, on ClosePeer, or after Config.IdleTimeout without
// traffic.
//
// Envelopes are signed by their originator's Ed25519 libp2p key over exactly
// the payload bytes (Sign, SignSecret) and verified over the bytes received
// (Open, OpenSecret), so forwarders pass them on untouched.
//
// The same code runs on real hosts (TCP, QUIC) and on mocknet hosts; mocknet
// ignores deadlines, so there only contexts and Close unblock a stuck stream.
package transport
