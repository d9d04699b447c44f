package node

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// Bounds on pull responses, on both sides: a responder never sends more and
// a requester never processes more.
const (
	maxFetchBlocks        = 100     // blocks per fetch response
	maxFetchBytes         = 3 << 20 // envelope bytes per fetch response (below the 4 MiB frame)
	maxStateInfoResponse  = 1024    // StateInfo envelopes per snapshot
	maxMembershipResponse = 1024    // alive envelopes per membership response
)

// errPullDenied answers a pull request this peer does not serve.
var errPullDenied = errors.New("node: pull request denied")

// pullFrom runs one anti-entropy exchange with p for channel ch: digest, then
// fetch of what is missing. Pulled blocks pass the same checks as pushed ones.
//
// The digest is asked within one PullInterval. The fetch that follows is
// bounded by bytes (maxFetchBytes per response), not by the interval: it has
// the transport's request timeout, so a fetch of megabyte blocks that is
// under way is finished rather than thrown away and asked again.
func (n *Node) pullFrom(ctx context.Context, p peer.ID, ch string) {
	n.metrics.pullRounds.Inc()
	dctx, cancel := context.WithTimeout(ctx, n.cfg.PullInterval)
	resp, err := n.tr.Pull(dctx, p, &wire.PullRequest{Request: &wire.PullRequest_Digest{Digest: &wire.DigestRequest{Channel: ch}}})
	cancel()
	if err != nil {
		return
	}
	d := resp.GetDigest()
	if d.GetChannel() != ch || !validRanges(d.GetRanges()) {
		n.drop("digest", reasonMalformed, p)
		return
	}
	cs := n.channel(ch)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	var missing []uint64
	if cs.activeLocked() {
		missing = cs.ledger.missing(d.GetRanges(), maxFetchBlocks)
		if len(missing) == 0 {
			missing = cs.catchUpLocked(p)
		}
	}
	cs.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	resp, err = n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Fetch{
		Fetch: &wire.FetchRequest{Channel: ch, Ranges: toRanges(missing)},
	}})
	if err != nil {
		return
	}
	if !n.applyPulled(p, resp.GetFetch().GetBlocks(), maxFetchBlocks) {
		// A forged block: stop reading this response and ask others.
		n.suspect(p)
	}
}

// catchUpLocked (cs.mu held) returns the numbers to fetch from p when p's StateInfo says
// it is ahead but its digest (its in-memory window) starts beyond what this
// ledger can take: a peer that fell further behind than the window catches
// up from the height on, a bounded range per exchange, served from the
// responder's store (Fabric's state transfer).
func (cs *channelState) catchUpLocked(p peer.ID) []uint64 {
	si := cs.states[p]
	if si == nil || si.height <= cs.ledger.height {
		return nil
	}
	var out []uint64
	for x := cs.ledger.height; x < si.height && len(out) < maxFetchBlocks; x++ {
		if cs.ledger.blocks[x] == nil {
			out = append(out, x)
		}
	}
	return out
}

// suspectFor is how long a peer that served a forged block is left out of
// pull and catch-up.
const suspectFor = time.Minute

// suspect leaves p out of pull and catch-up for suspectFor, and counts it.
func (n *Node) suspect(p peer.ID) {
	n.drop("pull", "bad_responder", p)
	until := n.now().Add(suspectFor)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.suspects[p] = until
}

// handlePull serves /fabgossip/pull/1.0.0 requests.
func (n *Node) handlePull(_ context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	switch r := req.GetRequest().(type) {
	case *wire.PullRequest_Digest:
		return n.serveDigest(from, r.Digest)
	case *wire.PullRequest_Fetch:
		return n.serveFetch(from, r.Fetch)
	case *wire.PullRequest_StateInfo:
		return n.serveStateInfo(from, r.StateInfo)
	case *wire.PullRequest_Membership:
		return n.serveMembership(from, r.Membership)
	case *wire.PullRequest_Chunks:
		return n.serveChunks(from, r.Chunks)
	}
	return nil, errPullDenied
}

// pullChannel returns ch's state if from may pull its blocks: ch is joined
// here and the audience lets from receive its blocks
// (routing.View.BlockPeer). A refusal is counted.
func (n *Node) pullChannel(from peer.ID, ch string) (*channelState, bool) {
	cs := n.channel(ch)
	v := n.view()
	m, ok := v.member(from)
	ok = ok && cs != nil && v.BlockPeer(m, ch)
	if ok {
		cs.mu.Lock()
		ok = cs.activeLocked()
		cs.mu.Unlock()
	}
	if !ok {
		n.drop("pull", reasonNotInChannel, from)
		return nil, false
	}
	return cs, true
}

func (n *Node) serveDigest(from peer.ID, r *wire.DigestRequest) (*wire.PullResponse, error) {
	cs, ok := n.pullChannel(from, r.GetChannel())
	if !ok {
		return nil, errPullDenied
	}
	settled := n.pullSettled()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return &wire.PullResponse{Response: &wire.PullResponse_Digest{
		Digest: &wire.Digest{Channel: cs.name, Ranges: cs.ledger.digest(settled)},
	}}, nil
}

// pullSettled is the latest arrival time of a block that pull serves now:
// PullGrace ago, or zero (every block) when PullGrace is 0.
func (n *Node) pullSettled() time.Time {
	if n.cfg.PullGrace <= 0 {
		return time.Time{}
	}
	return n.now().Add(-n.cfg.PullGrace)
}

// serveFetch answers with the blocks asked for, bounded in count and bytes,
// but none held for less than PullGrace (catch-up asks by height, and the
// height may name a block still on its way by push); blocks that fell out
// of the window are read from the store without any lock held.
func (n *Node) serveFetch(from peer.ID, r *wire.FetchRequest) (*wire.PullResponse, error) {
	if !validRanges(r.GetRanges()) {
		return nil, errPullDenied
	}
	cs, ok := n.pullChannel(from, r.GetChannel())
	if !ok {
		return nil, errPullDenied
	}
	capable := n.chunkCapable(cs.name, from)
	var out []*wire.Envelope
	for _, b := range n.fetch(cs, r.GetRanges(), maxFetchBlocks, maxFetchBytes, n.pullSettled()) {
		if b.chunks != nil && !capable {
			// A peer that predates chunks would refuse the header as a
			// data hash mismatch and blame this one.
			n.metrics.dropped.WithLabelValues("block", reasonNoChunkSupport).Inc()
			continue
		}
		out = append(out, b.env)
	}
	return &wire.PullResponse{Response: &wire.PullResponse_Fetch{Fetch: &wire.FetchResponse{Blocks: out}}}, nil
}
