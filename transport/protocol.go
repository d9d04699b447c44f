package transport

import "github.com/libp2p/go-libp2p/core/protocol"

// The fabgossip protocols. The ID carries the version; the messages evolve
// only compatibly.
const (
	// ProtocolPush carries Batch frames on one long-lived, write-only stream
	// per (sender, receiver).
	ProtocolPush protocol.ID = "/fabgossip/push/1.0.0"
	// ProtocolPull is one PullRequest and one PullResponse per stream.
	ProtocolPull protocol.ID = "/fabgossip/pull/1.0.0"
	// ProtocolHello is one Hello each way per stream: the handshake.
	ProtocolHello protocol.ID = "/fabgossip/hello/1.0.0"
)

// ServiceName is the libp2p resource-manager service every fabgossip stream
// is charged to, so limits can be set for it (rcmgr AddServiceLimit).
const ServiceName = "fabgossip.transport"

const numProtocols = 3

// protocolIndex maps the fabgossip protocols to 0..numProtocols-1, and
// anything else to -1.
func protocolIndex(p protocol.ID) int {
	switch p {
	case ProtocolPush:
		return 0
	case ProtocolPull:
		return 1
	case ProtocolHello:
		return 2
	}
	return -1
}
