// Package tree is fabgossip's dissemination tree: Plumtree (Leitão, Pereira, Rodrigues, SRDS
// 2007), one tree per (channel, publisher), on links that obey the routing package's audience. It
// is a state machine in the manner of etcd's raft: the node calls a method per event, passing
// `now`, then drains the outputs with [Machine.Ready]. No I/O, no clock, no goroutines; the random
// source is passed in.
//
//	                   eager (payload at once)
//	        root ─────────────► a ─────────────► b        org X
//	          ┆                 ┆ ▲              ┆
//	          ┆ lazy (IHAVE)    ┆ │ GRAFT        ┆ door: external ↔ external
//	          ┆                 ▼ │              ▼
//	          c ┄┄┄┄┄┄┄┄┄┄┄┄┄┄► d               e ─────► f        org Y
//
//	event                        machine                           Ready
//	Publish / Payload(fresh) ──► forward: eager links, lazy links ─► Payloads, IHaves
//	Payload(duplicate)       ──► prune unless guarded             ─► Prunes
//	IHave, Payload(skip)     ──► missing entries + timers
//	Tick                     ──► graft next announcer; beacon     ─► Grafts, IHaves
//	Graft                    ──► link eager, answer; over the cap ─► Payloads; Prunes (full)
//	Prune                    ──► link lazy; full: graft others    ─► Grafts
//	SendFailed               ──► announce instead                 ─► IHaves
//
// # Links
//
// [Candidates] is the only source of links: eligible peers of self's org, and, for an external
// self, a few doors to external eligible peers of each other org of the channel. Nothing is ever
// output to a peer that is not a current candidate of the tree's channel, so the tree cannot
// widen an audience that routing decided.
//
// # Relations
//
// Each end holds each link of each tree eager or lazy. The relation must be symmetric, and every
// rule either keeps it so or repairs it once traffic flows:
//
//   - Initially both ends decide alike from a hash of the tree and the unordered pair (doors start
//     eager), so no message is needed.
//   - A GRAFT makes the link eager at the end that receives it; the grafter turns it eager when
//     the answer arrives. A PRUNE makes it lazy at both ends.
//   - A fresh payload pushed on a link held lazy means the sender holds it eager: it becomes eager.
//   - A duplicate means the link is redundant: PRUNE, whichever way it was held, except within
//     PruneGuard after a graft, for blocks more than PruneWindow old, and on the last eager link.
//   - Fan-out inside an org is capped (Config.MaxEager own-org children per tree; doors are
//     bounded by Config.Doors and not counted, since a door refused would enter its org two
//     cross-org hops away). With equal links, first arrivals make a star around the root, whose
//     egress then carries the whole tree. An own-org GRAFT beyond the cap gets a PRUNE marked
//     full and no payload, and the grafter grafts its next announcer at once; a peer told full is
//     grafted last for a while. Own-org children beyond the cap (the initial rule) are pruned,
//     marked full, on the next payload, the farthest first.
//
// Every one-sided relation is then one where the eager end pushes and the lazy end hears it: a
// lost PRUNE or a lost graft answer leaves the other end eager, and its next push is either fresh
// (eager again) or a duplicate (PRUNE again). A lost GRAFT leaves both ends lazy. The one peer
// nobody pushes to is the root: a child that lost the root's PRUNE learns it from the root's next
// IHAVE of a block it lacks, since the root announces only to links it holds lazy (beacons aside,
// which come after the payload).
//
// # Recovery
//
// A missing block is one announced by an IHAVE, or one skipped: a payload or IHAVE of a number
// above the tree's highest reveals the numbers between, with the sender as a likely holder. A
// payload lost on an eager link is announced by nobody, so skips matter; the beacon (the tree's
// highest number to every link, at most once per Config.Beacon while blocks flow) covers the last
// block before a pause. Each missing block has one timer and at most one outstanding GRAFT;
// announcers that listed the number are grafted before those that only hold later numbers.
//
// # Bounds
//
// Trees per channel (MaxTrees, least recently used dropped, trees that never carried a payload
// first), missing entries per tree (MaxMissing), announcers per entry (MaxAnnouncers), numbers
// read per IHAVE or GRAFT and written per output (MaxIHave), grafts per missing entry (three
// rounds over its announcers), and timers (proportional to the missing entries) are all bounded,
// so a peer announcing millions of numbers, or inventing roots, costs bounded memory.
//
// The simulator in treesim drives many machines on virtual time and checks these properties.
package tree
