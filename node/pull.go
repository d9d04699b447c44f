package node

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport"
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
func (n *Node) pullFrom(ctx context.Context, p peer.ID, ch string) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PullInterval)
	defer cancel()
	n.metrics.pullRounds.Inc()
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Digest{Digest: &wire.DigestRequest{Channel: ch}}})
	if err != nil {
		return
	}
	d := resp.GetDigest()
	if d.GetChannel() != ch || !validRanges(d.GetRanges()) {
		n.drop("digest", reasonMalformed, p)
		return
	}
	n.mu.Lock()
	cs := n.channels[ch]
	var missing []uint64
	if cs != nil && cs.joined && !cs.left {
		missing = cs.ledger.missing(d.GetRanges(), maxFetchBlocks)
		if len(missing) == 0 {
			missing = cs.catchUpLocked(p)
		}
	}
	n.mu.Unlock()
	if len(missing) == 0 {
		return
	}
	resp, err = n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Fetch{
		Fetch: &wire.FetchRequest{Channel: ch, Ranges: toRanges(missing)},
	}})
	if err != nil {
		return
	}
	blocks := resp.GetFetch().GetBlocks()
	if len(blocks) > maxFetchBlocks {
		blocks = blocks[:maxFetchBlocks]
	}
	for _, env := range blocks {
		if !n.handleEnvelope(p, env, ViaPull) {
			// A forged block: stop reading this response and ask others.
			n.suspect(p)
			return
		}
	}
}

// catchUpLocked returns the numbers to fetch from p when p's StateInfo says
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
	n.mu.Lock()
	defer n.mu.Unlock()
	n.suspects[p] = n.now().Add(suspectFor)
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
		return n.serveMembership(from)
	}
	return nil, errPullDenied
}

// pullChannelLocked returns ch's state if from may pull its blocks: ch is
// joined here, and from is a live member of a channel org this peer may talk
// to, whose StateInfo says it joined. A refusal is counted.
func (n *Node) pullChannelLocked(from peer.ID, ch string) (*channelState, bool) {
	cs := n.channels[ch]
	ok := cs != nil && cs.joined && !cs.left
	if ok {
		_, ok = n.senderAllowedLocked(from, ch)
		ok = ok && cs.eligible(from)
	}
	if !ok {
		n.drop("pull", reasonNotInChannel, from)
		return nil, false
	}
	return cs, true
}

func (n *Node) serveDigest(from peer.ID, r *wire.DigestRequest) (*wire.PullResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs, ok := n.pullChannelLocked(from, r.GetChannel())
	if !ok {
		return nil, errPullDenied
	}
	return &wire.PullResponse{Response: &wire.PullResponse_Digest{
		Digest: &wire.Digest{Channel: cs.name, Ranges: cs.ledger.digest()},
	}}, nil
}

func (n *Node) serveFetch(from peer.ID, r *wire.FetchRequest) (*wire.PullResponse, error) {
	if !validRanges(r.GetRanges()) {
		return nil, errPullDenied
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cs, ok := n.pullChannelLocked(from, r.GetChannel())
	if !ok {
		return nil, errPullDenied
	}
	var out []*wire.Envelope
	for _, b := range n.fetchLocked(cs, r.GetRanges(), maxFetchBlocks, maxFetchBytes) {
		env := b.env
		if n.fetchTamper != nil {
			env = n.fetchTamper(env)
		}
		out = append(out, env)
	}
	return &wire.PullResponse{Response: &wire.PullResponse_Fetch{Fetch: &wire.FetchResponse{Blocks: out}}}, nil
}

// serveStateInfo answers with the StateInfo this peer holds for the channel
// the requester names by MAC, under Fabric's disclosure rule: a requester of
// another org learns only of external peers of its org or of this one, and
// one of this org that is not external only of this org's peers.
func (n *Node) serveStateInfo(from peer.ID, r *wire.StateInfoRequest) (*wire.PullResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.senderAllowedLocked(from, ""); !ok {
		return nil, errPullDenied
	}
	requester := n.members.get(from)
	var cs *channelState
	for name, c := range n.channels {
		if bytes.Equal(channelMAC(from, name), r.GetChannelMac()) {
			cs = c
			break
		}
	}
	if cs == nil || !n.network().OrgInChannel(requester.org, cs.name) {
		n.drop("pull", reasonNotInChannel, from)
		return nil, errPullDenied
	}
	var out []*wire.Envelope
	for id, si := range cs.states {
		if len(out) >= maxStateInfoResponse {
			break
		}
		if requester.org != n.org && !n.disclosableLocked(id, requester.org) {
			continue
		}
		if m := n.members.get(id); requester.org == n.org && !requester.external && m != nil && m.org != n.org {
			continue // a peer that is not external knows no foreign peer
		}
		out = append(out, si.env)
	}
	return &wire.PullResponse{Response: &wire.PullResponse_StateInfo{StateInfo: &wire.StateInfoSnapshot{Elements: out}}}, nil
}

// disclosableLocked reports whether what this peer knows of p may be told to
// a peer of the foreign org: p is external and of this org or that one.
func (n *Node) disclosableLocked(p peer.ID, org string) bool {
	if p == n.self {
		return n.external
	}
	m := n.members.get(p)
	return m != nil && m.external && (m.org == n.org || m.org == org)
}

// serveMembership answers with the alive messages of live members the
// requester may know: for a peer of this org, this org's members (Secrets
// included) and, if it is external, the foreign members too; for a foreign
// peer, external peers of this org or of the requester's, without Secrets.
func (n *Node) serveMembership(from peer.ID) (*wire.PullResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.senderAllowedLocked(from, ""); !ok {
		return nil, errPullDenied
	}
	requester := n.members.get(from)
	same := requester.org == n.org
	var out []*wire.Envelope
	if n.ownAlive != nil && (same || n.external) {
		if same {
			out = append(out, n.ownAlive)
		} else {
			out = append(out, transport.StripSecret(n.ownAlive))
		}
	}
	for id, m := range n.members.members {
		if len(out) >= maxMembershipResponse {
			break
		}
		if m.dead || id == from {
			continue
		}
		switch {
		case same && (m.org == n.org || requester.external):
			// A peer that is not external knows no foreign peer.
			out = append(out, m.alive)
		case !same && n.disclosableLocked(id, requester.org):
			out = append(out, transport.StripSecret(m.alive))
		}
	}
	return &wire.PullResponse{Response: &wire.PullResponse_Membership{Membership: &wire.MembershipResponse{Alive: out}}}, nil
}
