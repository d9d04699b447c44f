// Package p2phost builds the libp2p host of a fabgossip peer from a Config.
//
// A fabgossip peer is a server on a permissioned network, so the host is
// deliberately plain:
//
//   - transports: TCP and QUIC v1 only (no WebSocket, WebTransport or WebRTC);
//   - security and multiplexing: libp2p's defaults (TLS 1.3, then Noise; yamux);
//   - no relay, no NAT port mapping: peers are reachable at their listen or
//     announce addresses;
//   - metrics: off unless a Prometheus registerer is passed with
//     WithPrometheusRegisterer;
//   - a resource manager built from libp2p's auto-scaled defaults plus
//     explicit limits for the fabgossip protocols (Config.Protocols) and the
//     fabgossip transport service (Config.ServiceName);
//   - a connection manager (low and high water, grace period) whose Protect
//     keeps peers that share a channel with us from being trimmed;
//   - a Gater: a bounded, expiring block list. A peer that fails the hello
//     handshake is blocked for a back-off and refused both when we dial it and
//     when it dials us (after the security handshake, once its peer ID is
//     proven).
//
// The libp2p host is authenticated only up to the peer ID: org membership is
// proven by the hello handshake of package node, which calls Host.BlockPeer
// when it fails.
//
// Protocol IDs are owned by package transport; this package repeats them only
// as the default Config.Protocols, to set resource limits without importing
// transport.
package p2phost
