package routing

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Kind says what a message is, which decides its routing rule. The zero Kind is not a kind:
// a message whose Kind was never set is dropped by [Plan] rather than routed as something it is not.
type Kind uint8

// The kinds of message the planner routes.
const (
	// KindBlock is a block of a channel.
	KindBlock Kind = iota + 1
	// KindStateInfo is a peer's signed statement about one channel.
	KindStateInfo
	// KindAlive is a peer's membership heartbeat.
	KindAlive
)

// String returns the kind's name, or "Kind(n)" for a value that is not a kind.
func (k Kind) String() string {
	switch k {
	case KindBlock:
		return "block"
	case KindStateInfo:
		return "stateinfo"
	case KindAlive:
		return "alive"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Message is one item of an emitter batch: the routing facts the planner needs and an opaque
// payload that it hands back untouched. The planner never looks inside Payload.
type Message[P any] struct {
	Kind Kind
	// Channel is the channel of a block or StateInfo; ignored for alive messages.
	Channel string
	// Origin is the publisher of a block or the subject of a StateInfo or alive message.
	Origin peer.ID
	// OriginOrg is the org of Origin. An alive message whose OriginOrg is empty (org unknown) goes nowhere.
	OriginOrg string
	// OriginExternal reports whether Origin is an external peer. It lets a StateInfo cross org
	// boundaries and decides whether an own-org alive is org-restricted.
	OriginExternal bool
	// From is the peer the message was received from, or "" when it was originated locally.
	// A message is never sent back to From, nor to Origin: both hold it already.
	From peer.ID
	// OrgOnly restricts the message to the sender's org, whatever its kind: an org-only block is
	// never handed to other orgs, even with CrossOrg set.
	OrgOnly bool
	// CrossOrg (blocks only) asks this peer to hand the block to the channel's other orgs. The node
	// sets it when self is external and published the block, or first accepted a block published by
	// its own org. It is honoured only when the view's Self is external and OrgOnly is false.
	CrossOrg bool
	// All (alive messages only) sends the message to every peer its rule admits rather than to a
	// sample of PropagatePeerNum: a peer's own heartbeat sent directly to its whole audience.
	All bool
	// Payload is carried through to the Outbound unchanged.
	Payload P
}

// Outbound is one message as it is to be sent to one peer.
type Outbound[P any] struct {
	Payload P
	// StripSecret asks the sender to remove org-internal data (internal addresses) before sending.
	// It is set exactly when an alive message goes to a peer whose org differs from the origin's org,
	// so that internal addresses never leave the origin's org.
	StripSecret bool
}

// Send is everything one batch sends to one peer: a single frame's worth of messages, in batch order.
type Send[P any] struct {
	To       peer.ID
	Messages []Outbound[P]
}

// holder reports whether id certainly holds the message already: the peer it came from, or its
// origin. The planner never sends a message to a holder, so a publisher never gets its own block
// back and a forwarded message still reaches a full fan-out of peers that lack it.
func (m *Message[P]) holder(id peer.ID) bool {
	return id != "" && (id == m.From || id == m.Origin)
}
