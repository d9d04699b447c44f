package routing

import "slices"

// The audience: who may receive, serve or send each kind of message. These predicates are the one
// place where confidentiality is decided. The planner routes pushes with them, and every node path
// that serves a pull, answers a hello or accepts a frame asks them, so a rule changed here changes
// everywhere at once. All of them are pure functions of the view and are cheap: no allocation, no
// pass over the members.
//
// The rules, from Fabric's and the design's:
//
//   - Talk: two peers exchange anything at all only within one org, or across orgs when both are
//     external and their orgs share a channel. Peers that are not external are invisible to other
//     orgs, and orgs with no channel in common never learn of each other.
//   - Blocks and digests of channel C (push, pull, tree control): only between peers that may talk,
//     and the other side must be eligible for C: of an org in C, holding a verified StateInfo
//     for C, alive. A sender of blocks of C must be of an org in C; it need not yet be eligible (its
//     StateInfo may still be on its way).
//   - StateInfo of subject S for C: told only to peers of an org in C that may talk to us; to a peer
//     of another org only when S is external and of our org or of that peer's; and a peer of our org
//     that is not external never learns of a foreign S.
//   - Membership (alive) of subject S: the same as StateInfo without the channel: inside our org,
//     members of our org, and foreign members only to external peers of our org; to a foreign peer,
//     only external peers of our org or of its own.

// SharesChannel reports whether orgs a and b are both members of some channel of the network
// config (an org shares every channel it is in with itself).
func (v *View) SharesChannel(a, b string) bool {
	for _, orgs := range v.ChannelOrgs {
		if slices.Contains(orgs, a) && slices.Contains(orgs, b) {
			return true
		}
	}
	return false
}

// MayTalk reports whether self and m may exchange anything: m is of self's org, or both are
// external and their orgs share a channel.
func (v *View) MayTalk(m *Member) bool {
	if m.ID == "" || m.ID == v.Self.ID {
		return false
	}
	if m.Org == v.Self.Org {
		return true
	}
	return v.Self.External && m.External && v.SharesChannel(v.Self.Org, m.Org)
}

// BlockPeer reports whether m may receive blocks, digests and tree control of channel ch from
// self, by push or pull, and whether self may serve it blocks of ch: m is alive, may talk to self,
// and is eligible for ch. Self must itself be in ch: a peer whose org is not in ch holds none of it.
func (v *View) BlockPeer(m *Member, ch string) bool {
	orgs := v.ChannelOrgs[ch]
	return m.Alive && m.Channels[ch] && slices.Contains(orgs, m.Org) && slices.Contains(orgs, v.Self.Org) &&
		v.MayTalk(m)
}

// BlockSender reports whether self accepts blocks, digests and tree control of channel ch from m:
// m is alive, may talk to self, and its org is in ch. Eligibility is not required of a sender: its
// StateInfo may still be on its way, and a block is verified on its own signature.
func (v *View) BlockSender(m *Member, ch string) bool {
	orgs := v.ChannelOrgs[ch]
	return m.Alive && slices.Contains(orgs, m.Org) && slices.Contains(orgs, v.Self.Org) && v.MayTalk(m)
}

// MayLearn reports whether self may tell to what it knows of subject (its alive, its
// StateInfo): within self's org, members of self's org always and foreign subjects only to an
// external peer; to a peer of another org, only external subjects of self's org or of to's org.
// Self is a subject like any other (its own alive, its own StateInfo). to must be a peer self
// may talk to.
func (v *View) MayLearn(to, subject *Member) bool {
	if !v.MayTalk(to) {
		return false
	}
	if to.Org == v.Self.Org {
		return subject.Org == v.Self.Org || to.External
	}
	return subject.External && (subject.Org == v.Self.Org || subject.Org == to.Org)
}

// MayLearnStateInfo reports whether self may tell to the StateInfo of subject for channel ch: to is
// of an org in ch, and may learn of subject at all ([View.MayLearn]).
func (v *View) MayLearnStateInfo(to, subject *Member, ch string) bool {
	return slices.Contains(v.ChannelOrgs[ch], to.Org) && v.MayLearn(to, subject)
}

// MayKnow reports whether self may know of subject at all: accept its alive and keep it in the
// view. That is exactly whether the two may talk: a peer that is not external knows no foreign
// peer, and an external one knows foreign peers only if they are external and share a channel.
func (v *View) MayKnow(subject *Member) bool { return v.MayTalk(subject) }
