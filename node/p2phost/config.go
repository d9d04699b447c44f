package p2phost

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// The fabgossip protocol IDs. Package transport owns the exported constants;
// they are repeated here (unexported) only to build DefaultConfig's
// resource limits without an import cycle.
const (
	protoHello protocol.ID = "/fabgossip/hello/1.0.0"
	protoPush  protocol.ID = "/fabgossip/push/1.0.0"
	protoPull  protocol.ID = "/fabgossip/pull/1.0.0"
)

// DefaultServiceName is the resource-manager service that the transport's
// streams join with Stream.Scope().SetService.
const DefaultServiceName = "fabgossip.transport"

// DefaultPort is the TCP and UDP port of a real peer: Fabric's peer port.
const DefaultPort = 7051

// StreamLimit bounds the streams and memory of one resource-manager scope.
// The numbers are fixed: unlike libp2p's own defaults they do not grow with
// the machine, because they describe the protocol (how many streams a peer
// legitimately opens), not the machine's capacity.
type StreamLimit struct {
	// StreamsInbound and StreamsOutbound cap the open streams per direction.
	StreamsInbound  int
	StreamsOutbound int
	// Streams caps both directions together; it should be at least the
	// larger of the two.
	Streams int
	// Memory caps the bytes reserved with Scope().ReserveMemory.
	Memory int64
}

// ProtocolLimit is the resource limit of one protocol, across all peers
// (Limit) and for each peer (PeerLimit).
type ProtocolLimit struct {
	ID        protocol.ID
	Limit     StreamLimit
	PeerLimit StreamLimit
}

// Config describes the libp2p host of a peer. Start from DefaultConfig (a
// real peer) or LocalConfig (many peers on one machine) and change fields.
type Config struct {
	// ListenAddrs are the multiaddrs the host listens on: /ip4 or /ip6, then
	// /tcp/N or /udp/N/quic-v1; port 0 picks a free port.
	ListenAddrs []string

	// AnnounceAddrs, when not empty, replace the addresses the host
	// advertises (identify, peer records, Host.Addrs): set them when the
	// listen addresses are not the ones other peers can reach (0.0.0.0,
	// containers, port forwarding). Empty means advertise what we listen on.
	AnnounceAddrs []string

	// UserAgent is sent in identify. Informational only: it is not
	// authenticated.
	UserAgent string

	// ConnMgrLowWater and ConnMgrHighWater drive connection trimming: above
	// the high water mark the least valuable unprotected connections are
	// closed down to the low water mark. Peers protected with
	// ConnManager().Protect (peers that share a channel) are never trimmed.
	ConnMgrLowWater  int
	ConnMgrHighWater int
	// ConnMgrGracePeriod protects a new connection from trimming for this
	// long, so that the hello handshake can finish and protect it.
	ConnMgrGracePeriod time.Duration

	// GaterBackoff is how long Host.BlockPeer keeps a peer out. Long enough to
	// stop a misconfigured peer from hammering us, short enough that a fixed
	// peer (renewed certificate) comes back without an operator.
	GaterBackoff time.Duration
	// GaterMaxEntries bounds the block list; when full, the entry that would
	// expire first is dropped. It bounds memory against a flood of peer IDs,
	// which are free to create.
	GaterMaxEntries int

	// Protocols are the resource limits of the fabgossip protocols. The
	// default lists push, pull and hello.
	Protocols []ProtocolLimit
	// ServiceName is the resource-manager service of the fabgossip transport,
	// limited by ServiceLimit in total and ServicePeerLimit per peer.
	ServiceName      string
	ServiceLimit     StreamLimit
	ServicePeerLimit StreamLimit

	// LimitExempt are the address ranges exempt from libp2p's limits per
	// source address: at most 8 concurrent connections per IPv4 address
	// (per IPv6 /56, 64 per /48), and new ones at a burst of 16 then one
	// every 5 s. nil means libp2p's own exemption, loopback (127.0.0.0/8
	// and ::1); an empty list exempts nothing. Peers that reach this one
	// through a single address (a NAT, a proxy) need that address here.
	LimitExempt []netip.Prefix
}

// DefaultConfig is a real peer: TCP and QUIC on port 7051 of every IPv4
// interface (add "/ip6/::/tcp/7051" and "/ip6/::/udp/7051/quic-v1" for IPv6),
// libp2p's connection-manager water marks (160/192, 1 min grace), a 1 min
// gater back-off over at most 4096 entries, and limits for the fabgossip
// protocols.
//
// Protocol limits, per peer: push is one long-lived stream each way (4 allows
// a replacement while the old one is torn down, and frames up to 4 MiB);
// pull is one short stream per exchange, a few channels at a time; hello is
// one stream per connection.
func DefaultConfig() Config {
	return Config{
		ListenAddrs: []string{
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
		},
		UserAgent:          "fabgossip",
		ConnMgrLowWater:    160,
		ConnMgrHighWater:   192,
		ConnMgrGracePeriod: time.Minute,
		GaterBackoff:       time.Minute,
		GaterMaxEntries:    4096,
		Protocols: []ProtocolLimit{
			{
				ID:        protoPush,
				Limit:     StreamLimit{StreamsInbound: 1024, StreamsOutbound: 1024, Streams: 2048, Memory: 512 << 20},
				PeerLimit: StreamLimit{StreamsInbound: 4, StreamsOutbound: 4, Streams: 8, Memory: 32 << 20},
			},
			{
				ID:        protoPull,
				Limit:     StreamLimit{StreamsInbound: 512, StreamsOutbound: 512, Streams: 1024, Memory: 256 << 20},
				PeerLimit: StreamLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 64 << 20},
			},
			{
				ID:        protoHello,
				Limit:     StreamLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 16 << 20},
				PeerLimit: StreamLimit{StreamsInbound: 2, StreamsOutbound: 2, Streams: 4, Memory: 1 << 20},
			},
		},
		ServiceName:      DefaultServiceName,
		ServiceLimit:     StreamLimit{StreamsInbound: 2048, StreamsOutbound: 2048, Streams: 4096, Memory: 768 << 20},
		ServicePeerLimit: StreamLimit{StreamsInbound: 24, StreamsOutbound: 24, Streams: 48, Memory: 96 << 20},
	}
}

// LocalConfig is DefaultConfig for many peers on one machine (tests, the
// testnet): TCP and QUIC on 127.0.0.1 with OS-chosen ports, and a 10 s gater
// back-off so that a test sees a blocked peer come back.
func LocalConfig() Config {
	cfg := DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.GaterBackoff = 10 * time.Second
	return cfg
}

// Validate reports the first invalid field, naming it and its value. The
// error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	if len(c.ListenAddrs) == 0 {
		return invalid("ListenAddrs", "[]", "at least one listen address is required")
	}
	if err := validateAddrs("ListenAddrs", c.ListenAddrs); err != nil {
		return err
	}
	for i, s := range c.ListenAddrs {
		if a, _ := ma.NewMultiaddr(s); !isTCPOrQUIC(a) { // parsed by validateAddrs
			return invalid(fmt.Sprintf("ListenAddrs[%d]", i), fmt.Sprintf("%q", s), "only TCP and QUIC v1 transports are supported")
		}
	}
	if err := validateAddrs("AnnounceAddrs", c.AnnounceAddrs); err != nil {
		return err
	}
	if c.ConnMgrLowWater < 0 {
		return invalid("ConnMgrLowWater", c.ConnMgrLowWater, "must not be negative")
	}
	if c.ConnMgrHighWater <= c.ConnMgrLowWater {
		return invalid("ConnMgrHighWater", c.ConnMgrHighWater,
			fmt.Sprintf("must be greater than ConnMgrLowWater (%d)", c.ConnMgrLowWater))
	}
	if c.ConnMgrGracePeriod < 0 {
		return invalid("ConnMgrGracePeriod", c.ConnMgrGracePeriod, "must not be negative")
	}
	if c.GaterBackoff <= 0 {
		return invalid("GaterBackoff", c.GaterBackoff, "must be positive")
	}
	if c.GaterMaxEntries <= 0 {
		return invalid("GaterMaxEntries", c.GaterMaxEntries, "must be positive")
	}
	seen := make(map[protocol.ID]bool, len(c.Protocols))
	for i, p := range c.Protocols {
		field := fmt.Sprintf("Protocols[%d]", i)
		if !strings.HasPrefix(string(p.ID), "/") {
			return invalid(field+".ID", fmt.Sprintf("%q", p.ID), `must start with "/"`)
		}
		if seen[p.ID] {
			return invalid(field+".ID", fmt.Sprintf("%q", p.ID), "is listed twice")
		}
		seen[p.ID] = true
		if err := p.Limit.validate(field + ".Limit"); err != nil {
			return err
		}
		if err := p.PeerLimit.validate(field + ".PeerLimit"); err != nil {
			return err
		}
	}
	if c.ServiceName == "" {
		return invalid("ServiceName", `""`, "must not be empty")
	}
	for i, p := range c.LimitExempt {
		if !p.IsValid() {
			return invalid(fmt.Sprintf("LimitExempt[%d]", i), p, "is not an address prefix")
		}
	}
	if err := c.ServiceLimit.validate("ServiceLimit"); err != nil {
		return err
	}
	return c.ServicePeerLimit.validate("ServicePeerLimit")
}

func (l StreamLimit) validate(field string) error {
	switch {
	case l.StreamsInbound <= 0:
		return invalid(field+".StreamsInbound", l.StreamsInbound, "must be positive")
	case l.StreamsOutbound <= 0:
		return invalid(field+".StreamsOutbound", l.StreamsOutbound, "must be positive")
	case l.Streams < max(l.StreamsInbound, l.StreamsOutbound):
		return invalid(field+".Streams", l.Streams,
			fmt.Sprintf("must be at least max(StreamsInbound, StreamsOutbound) = %d", max(l.StreamsInbound, l.StreamsOutbound)))
	case l.Memory <= 0:
		return invalid(field+".Memory", l.Memory, "must be positive")
	}
	return nil
}

func validateAddrs(field string, addrs []string) error {
	for i, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return invalid(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q", s), err.Error())
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			return invalid(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q", s), "must not contain /p2p/")
		}
	}
	return nil
}

// isTCPOrQUIC reports whether a is /ip4|ip6/.../tcp/N or /ip4|ip6/.../udp/N/quic-v1.
func isTCPOrQUIC(a ma.Multiaddr) bool {
	var codes []int
	for _, c := range a {
		codes = append(codes, c.Code())
	}
	if len(codes) < 2 || (codes[0] != ma.P_IP4 && codes[0] != ma.P_IP6) {
		return false
	}
	switch {
	case len(codes) == 2 && codes[1] == ma.P_TCP:
		return true
	case len(codes) == 3 && codes[1] == ma.P_UDP && codes[2] == ma.P_QUIC_V1:
		return true
	}
	return false
}

func invalid(field string, value any, why string) error {
	return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, value, why)
}
