package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
)

// nodeView is the membership as routing sees it, with an index by peer ID so
// that every accept and serve decision can ask routing's audience predicates
// about one peer cheaply. It is immutable once built and shared by every
// reader until something that affects routing changes.
type nodeView struct {
	routing.View
	byID map[peer.ID]int // index into View.Members
}

// member returns what the view knows of p: Self for this peer, a live member,
// or false (unknown or dead).
func (v *nodeView) member(p peer.ID) (*routing.Member, bool) {
	if p == v.Self.ID {
		return &v.Self, true
	}
	i, ok := v.byID[p]
	if !ok {
		return nil, false
	}
	return &v.Members[i], true
}

// senderReason names why from may not send this peer messages of channel ch
// (ch == "" for messages of no channel), as counted in the drop metrics, or
// "" when it may.
func senderReason(v *nodeView, from peer.ID, ch string) string {
	m, ok := v.member(from)
	switch {
	case !ok || from == v.Self.ID:
		return reasonUnknownSender
	case ch != "" && !v.OrgInChannel(m.Org, ch):
		return reasonSenderNotMember
	case ch == "" && !v.MayTalk(m), ch != "" && !v.BlockSender(m, ch):
		return reasonForeign
	}
	return ""
}

// invalidateView marks the routing view stale.
func (n *Node) invalidateView() { n.viewVer.Add(1) }

// view returns the current view, rebuilt only when something that affects
// routing changed since it was last built.
func (n *Node) view() *nodeView {
	ver := n.viewVer.Load()
	if v := n.viewCache.Load(); v != nil && v.ver == ver {
		return v.v
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ver = n.viewVer.Load()
	if v := n.viewCache.Load(); v != nil && v.ver == ver {
		return v.v
	}
	v := &nodeView{
		View: routing.View{
			Self:        routing.Member{ID: n.self, Org: n.org, External: n.external, Alive: true, Channels: map[string]bool{}},
			ChannelOrgs: n.network().ChannelOrgs(),
			Members:     make([]routing.Member, 0, len(n.members.members)),
		},
		byID: make(map[peer.ID]int, len(n.members.members)),
	}
	chans := n.channelList()
	for _, cs := range chans {
		cs.mu.Lock()
		if cs.activeLocked() {
			v.Self.Channels[cs.name] = true
		}
		cs.mu.Unlock()
	}
	for _, m := range n.members.members {
		if m.dead {
			continue
		}
		rm := routing.Member{ID: m.id, Org: m.org, External: m.external, Alive: true}
		v.byID[m.id] = len(v.Members)
		v.Members = append(v.Members, rm)
	}
	for _, cs := range chans {
		cs.mu.Lock()
		for id := range cs.states {
			if i, ok := v.byID[id]; ok && cs.eligibleLocked(id) {
				rm := &v.Members[i]
				if rm.Channels == nil {
					rm.Channels = make(map[string]bool, 1)
				}
				rm.Channels[cs.name] = true
			}
		}
		cs.mu.Unlock()
	}
	n.viewCache.Store(&cachedView{ver: ver, v: v})
	return v
}

// cachedView is a view with the version it was built at.
type cachedView struct {
	ver uint64
	v   *nodeView
}
