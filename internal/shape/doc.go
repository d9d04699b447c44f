// Package shape makes libp2p hosts behave like hosts on a wide-area
// network, for the benchmark (testnet/bench, in one process) and the
// process testnet (`fabgossip testnet --wan`, inside every peer process).
// It is test equipment: a real peer never uses it unless its config's
// testnet section (node/peerconfig) points it at a shaping file, which only
// the testnet writes.
//
// Each fault is a host.Host wrapper around the streams the host opens
// (NewStream) and accepts (SetStreamHandler, SetStreamHandlerMatch);
// streams libp2p opens itself (identify, ping) are untouched:
//
//   - Latency (delay.go): every byte read from a stream becomes readable a
//     fixed one-way latency after it arrived, per stream, order kept. Both
//     ends of a link wrap their hosts, so each direction is delayed once.
//   - Egress (egress.go): one token bucket per host for every byte written
//     to its streams.
//   - Loss (loss.go): whole uvarint-length frames dropped on receipt, with a
//     seeded generator per host, on the protocols the caller names.
//
// Latencies (latency.go) draws the per-link latencies of a network from a
// seed, and Floor is the shortest-path latency a dissemination can reach
// through the relays it may use; the bench and the testnet report T_full as
// a multiple of it. Plan (plan.go) is the shaping file the testnet writes
// and every peer process reads, and New (host.go) builds a peer's shaped
// host from it.
package shape
