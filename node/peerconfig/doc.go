// Package peerconfig is the peer config file of `fabgossip peer` and the Peer
// it describes: a libp2p host, a gossip node, discovery and the admin API,
// built and run together. Library users can run a peer from a file the same
// way the command does:
//
//	cfg, err := peerconfig.Load("peer.yaml")
//	if err != nil { ... }          // every mistake, as file:line: field: message
//	p, err := peerconfig.New(cfg)  // reads the key, certificate and network files
//	if err != nil { ... }
//	err = p.Run(ctx)               // until ctx ends
//
// The file (unknown fields are errors; relative paths are relative to it):
//
//	network: ../../network.yaml     # the network config, the same on every peer
//	key: peer.key                   # this peer's Ed25519 key (mode 0600)
//	certificate: peer.cert          # its org's membership certificate
//	data_dir: data                  # the block store; default "data" next to this file
//	external: true                  # reachable by other orgs
//	channels: [ch0]                 # channels to join; omitted: all of the org's
//	listen: [/ip4/0.0.0.0/tcp/7051, /ip4/0.0.0.0/udp/7051/quic-v1]
//	announce: [/ip4/203.0.113.5/tcp/7051]
//	bootstrap: [/ip4/10.0.0.5/tcp/7051/p2p/12D3KooW...]
//	mdns: false
//	dht: false
//	admin:
//	  address: 127.0.0.1:9443       # "" turns the admin API off
//	  token_file: admin.token       # optional bearer token
//	log:
//	  level: info                   # debug, info, warn, error
//	  format: text                  # text, json
//	gossip:
//	  preset: default               # default (Fabric's timings; the store fsyncs)
//	                                # or local (one machine; the store does not fsync)
//	  pull_interval: 4s             # any node.Config field, in snake case
//	  dissemination: tree           # tree (eager tree, lazy digests) or fabric (Fabric's random push)
//	testnet:                        # for `fabgossip testnet` only; a real peer leaves it out
//	  shaping: ../../shaping.json   # the WAN shaping plan the testnet writes (internal/shape)
//
// The data directory holds blocks.db, the peer's block store (node/store):
// every block it delivered, the channels it joined, its ledger heights. A
// restarted peer, also one killed with SIGKILL at any moment, resumes from
// it and catches up from its peers what it missed. The store locks the
// directory, so a second peer on the same directory fails at New with an
// error wrapping store.ErrLocked. "" is an error (leave the field out for the
// default).
//
// WriteLayout generates a whole network (network config, CA keys, peer keys,
// certificates and peer configs) into a directory.
package peerconfig
