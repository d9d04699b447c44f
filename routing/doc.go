// Package routing decides who receives what: given an emitter batch and a membership view, [Plan]
// returns one [Send] per receiving peer. It is where confidentiality is decided, and it is pure:
// no I/O, no clock, no goroutines; the random source is passed in and only used during a call.
//
//	batch ──► classify ──► blocks, by channel ──────► one sample per channel (+ per other org)  ┐
//	(Message)          ├─► StateInfo ───────────────► one sample per message                    │
//	                   ├─► org-restricted ──────────► one own-org sample for all of them        ├─► merge ──► []Send
//	                   ├─► other alive ─────────────► one sample per message                    │   (one per peer,
//	                   └─► unknown kind: dropped                                                ┘    by peer ID)
//
// # Routing rules
//
// The rules reproduce Fabric's gossipBatch. k is [Config.PropagatePeerNum], kc is
// [Config.CrossOrgPeerNum]. "Our org" is the view's Self.Org.
//
//  1. Blocks of channel C: one random sample of k peers of our org that are eligible for C
//     (alive, org in C, holding a verified StateInfo for C), shared by all blocks of C in the batch.
//  2. Blocks of C with CrossOrg set (and not OrgOnly), when Self is external: also one sample of kc
//     external, eligible peers of each other org of C.
//  3. StateInfo: per message, k peers of our org; if its originator is external, k peers of any
//     org in C instead. A foreign originator's StateInfo (relayed) goes, like a foreign alive, only
//     to external peers of our org or of its origin's org, never to a third org.
//  4. Org-restricted messages (OrgOnly StateInfo, and the alive messages of our org's peers that
//     are OrgOnly or not external): one sample of k peers of our org for all of them together.
//  5. Other alive messages: per message, k peers. An alive of our org may go to anyone; a foreign
//     one only to external peers of our org or of its origin's org, never to a third org (and
//     only to our org's external peers when it is OrgOnly). An alive whose origin org is unknown
//     (empty OriginOrg) goes nowhere. An alive marked All (a peer's own heartbeat sent directly)
//     follows rule 5 whatever its org, and goes to every peer the rule admits instead of k: an
//     OrgOnly one to every peer of our org, another to every peer that may learn of its subject.
//
// On top of the rules, every plan obeys these invariants:
//
//   - Nothing is sent to Self, to a dead member, back to the peer a message came from (From), or
//     to its Origin, which holds it by definition (a publisher never gets its own block back).
//     Both are set aside before sampling, so a forwarded message still reaches min(k, audience)
//     peers (Fabric samples first and silently loses fan-out).
//   - Nothing crosses an org boundary unless both Self and the receiver are external: peers that
//     are not external never talk to other orgs. Rule 2 and the foreign-alive case of rule 5 state
//     this explicitly; for rules 3 and 5 it is the design's boundary rule applied as a safety net,
//     so a leaked non-external foreign member in the view is never sent to.
//   - An alive message sent to a peer whose org differs from the origin's carries
//     [Outbound.StripSecret]: internal addresses never leave the origin's org.
//   - OrgOnly wins over everything that would widen a message's audience: an org-only block is not
//     handed to other orgs, an org-only StateInfo is routed by rule 4, and an org-only foreign alive
//     stays in our org. It never widens one: a foreign alive goes only to external peers even
//     when org-only.
//
// # Shared samples and senders
//
// Rules 1, 2 and 4 send a whole group of messages to one sample, but the messages of a group may
// have come from different peers, and none may go back to its own sender. The sample is therefore
// drawn with every sender of the group set aside. Only if that leaves fewer than k candidates is
// each message topped up from the other senders, so that every message still reaches exactly
// min(k, |its audience|) peers, and the top-up peers are the only ones not common to the group.
//
// # Output
//
// Sends are ordered by peer ID; each carries its messages in batch order, each at most once.
// With the same arguments and the same rng state a plan is the same.
//
// # Cost
//
// Plan runs on every emitter flush, so it avoids passes over the view: samples are drawn by a
// lazy Fisher–Yates shuffle over one index buffer per call, which visits about k/p members for an
// audience that is a fraction p of the view, and at worst every member once per sample. Filters
// test cheap fields (alive, org, channel) before comparing peer IDs. Assignments are merged with
// integer sorts; only the receivers are ordered by ID.
package routing
