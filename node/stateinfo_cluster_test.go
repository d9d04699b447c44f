package node_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestStateInfoKnownList: a StateInfo request lists what the requester
// holds, so once a channel has converged the periodic snapshot exchange
// carries no StateInfo at all. Every other request of peer 0 goes out with
// its list emptied: those answers carry the channel's StateInfo in full,
// so the empty ones are not an exchange that carries nothing anyway.
func TestStateInfoKnownList(t *testing.T) {
	cfg := node.LocalConfig()
	var n stateInfoCounts
	c := startCluster(t, oneOrg(4), testnet.Options{Seed: 33, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		if p.Index != 0 {
			return nil
		}
		return []node.Option{node.WithNetworkWrap(nil, func(nw node.Network) node.Network { return stateInfoCounter{nw, &n} })}
	}})
	joinAll(t, c, "ch")
	for _, p := range c.Peers {
		waitFor(t, "every peer sees the channel's other peers", func() bool { return len(p.ChannelPeers("ch")) == len(c.Peers)-1 })
	}
	time.Sleep(2 * cfg.RequestStateInfoInterval) // exchanges started before convergence end
	before := n.snapshot()
	time.Sleep(6 * cfg.RequestStateInfoInterval)
	d := n.snapshot().minus(before)
	if d.withList == 0 || d.withoutList == 0 {
		t.Fatalf("peer 0's StateInfo requests in 6 intervals: %d with its list, %d without, want some of each", d.withList, d.withoutList)
	}
	if d.elementsWith != 0 {
		t.Errorf("%d converged StateInfo exchanges carried %d elements, want 0", d.withList, d.elementsWith)
	}
	if d.elementsWithout < d.withoutList {
		t.Errorf("%d StateInfo requests without a list carried %d elements, want at least one each", d.withoutList, d.elementsWithout)
	}
}

// stateInfoCounts counts peer 0's answered StateInfo requests and the
// elements of their answers, apart for requests sent with and without the
// list of what it holds.
type stateInfoCounts struct {
	sent                                                 atomic.Int64
	withList, withoutList, elementsWith, elementsWithout atomic.Int64
}

type stateInfoTally struct{ withList, withoutList, elementsWith, elementsWithout int64 }

func (c *stateInfoCounts) snapshot() stateInfoTally {
	return stateInfoTally{c.withList.Load(), c.withoutList.Load(), c.elementsWith.Load(), c.elementsWithout.Load()}
}

func (a stateInfoTally) minus(b stateInfoTally) stateInfoTally {
	return stateInfoTally{a.withList - b.withList, a.withoutList - b.withoutList, a.elementsWith - b.elementsWith, a.elementsWithout - b.elementsWithout}
}

// stateInfoCounter empties the known list of every other StateInfo request
// and counts what comes back.
type stateInfoCounter struct {
	node.Network
	n *stateInfoCounts
}

func (s stateInfoCounter) Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	si := req.GetStateInfo()
	if si == nil {
		return s.Network.Pull(ctx, to, req)
	}
	withList := s.n.sent.Add(1)%2 == 0
	if !withList {
		req = &wire.PullRequest{Request: &wire.PullRequest_StateInfo{StateInfo: &wire.StateInfoRequest{ChannelMac: si.GetChannelMac()}}}
	}
	resp, err := s.Network.Pull(ctx, to, req)
	if err != nil {
		return resp, err
	}
	elements := int64(len(resp.GetStateInfo().GetElements()))
	if withList {
		s.n.withList.Add(1)
		s.n.elementsWith.Add(elements)
	} else {
		s.n.withoutList.Add(1)
		s.n.elementsWithout.Add(elements)
	}
	return resp, nil
}
