// Package node is a fabgossip peer: the composition root of the library.
//
// A Node runs on a libp2p host (build one with p2phost.New, or bring your
// own). It proves its org membership with a certificate, keeps a verified
// membership view, joins channels, and moves blocks the way Hyperledger
// Fabric's gossip does, with its known faults fixed:
//
//	Publish ─► ledger ─► emitter (batching) ─► planner (routing) ─► transport push
//	                                                                     │
//	transport push/pull ─► dedup ─► signature ─► authority ─► ledger ─► Subscribe
//	                                                         └─► emitter (forward once)
//
// Membership. On every new connection both sides run the hello handshake
// (/fabgossip/hello/1.0.0): each sends its signed alive message carrying its
// membership certificate, which must chain to an org CA of the network, be
// valid now and name the connected peer ID. A peer that fails is
// disconnected and gated. Alive heartbeats are then gossiped every
// AliveTimeInterval under the planner's disclosure rules; a peer silent for
// AliveExpirationTimeout leaves the view and is probed until it returns.
// Peers that are not external never talk to other orgs, and orgs that share
// no channel never learn of each other.
//
// Channels. A joined peer publishes a signed StateInfo naming the channel
// only by MAC = SHA-256(peer ID ‖ channel name); a peer is eligible for a
// channel when its org is a member and its StateInfo says it joined. Blocks
// are pushed to PropagatePeerNum eligible peers of the own org and, by an
// external peer of the publisher's org, to CrossOrgPeerNum external eligible
// peers of every other channel org; every peer forwards a block once, when it
// first accepts it. Pull anti-entropy (/fabgossip/pull/1.0.0) repairs what
// push missed from a window of the last MaxBlockCountToStore blocks.
// Subscribe delivers every block exactly once and in order.
//
// Large blocks. Data over Config.ChunkThreshold is published as a signed
// header committing to fixed-size chunks (package chunk); with the tree the
// chunks are striped over each org and along a tree of orgs, so that every
// peer sends about one copy (stripe.go), else they follow the header; each
// is verified on arrival and relayed at once, and missing ones are pulled
// by ranges (chunked.go, chunkpull.go). Such a block is delivered, like any
// other, once complete.
//
// Everything a Node starts is stopped and waited for by Close.
package node
