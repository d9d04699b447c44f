package testnet

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// LoopbackListenAddr is where NewLoopbackHost listens: a port of its own on
// 127.0.0.1.
const LoopbackListenAddr = "/ip4/127.0.0.1/tcp/0"

// NewLoopbackHost builds a real libp2p host of key that listens on
// LoopbackListenAddr: TCP only, libp2p's default security (TLS, Noise) and
// muxer (yamux), no resource limits (network.NullResourceManager, so that
// dozens of hosts in one process never refuse each other), no connection
// trimming (connmgr.NullConnMgr, as a mocknet host has), no relay, no NAT
// port mapping, no mDNS, no metrics. The caller closes it.
//
// It is the loopback counterpart of a mocknet host, for a CPU-realistic
// check: every byte goes through the kernel, security and muxer, and there
// is no emulated latency.
func NewLoopbackHost(key crypto.PrivKey) (host.Host, error) {
	return newLoopbackHost(key, LoopbackListenAddr)
}

// newLoopbackHost is NewLoopbackHost listening on listen: a TCP host dials
// from its listen address, so a host on 127.0.0.2 connects from there.
func newLoopbackHost(key crypto.PrivKey, listen string) (host.Host, error) {
	h, err := libp2p.New(
		libp2p.Identity(key),
		// Listen after construction: libp2p v0.51 leaks the swarm when it
		// cannot listen during construction (see node/p2phost).
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(&connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("testnet: loopback host: %w", err)
	}
	if err := h.Network().Listen(ma.StringCast(listen)); err != nil {
		return nil, errors.Join(fmt.Errorf("testnet: loopback host: listen on %s: %w", listen, err), h.Close())
	}
	return h, nil
}
