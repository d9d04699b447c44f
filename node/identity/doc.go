// Package identity is who is who in a fabgossip network: the network config
// that every peer holds, the peers' and org CAs' keys, and the membership
// certificates that bind a peer ID to an org.
//
// The picture:
//
//	network.yaml (the same file on every peer)      Network
//	┌────────────────────────────────────────┐      ├─ Org(name) → CA public key
//	│ network: fabnet                        │      ├─ Channel(name), ChannelOrgs()
//	│ orgs:     Org1 (CA), Org2 (CA)         │ ───► ├─ OrgInChannel, MayPublish
//	│ channels: ch0 {orgs, publishers}       │      └─ ChannelsOfOrg
//	└────────────────────────────────────────┘               │ trusts
//	                                                          ▼
//	org CA key (0600, offline) ──IssueCertificate──► Certificate
//	                                                 {Body:      network, org, peer ID,
//	                                                             [not before, not after), serial
//	                                                  Signature: CA over exactly Body}
//	                                                          │ carried in Alive and Hello
//	peer key (0600) ─► libp2p host ─► peer ID                 ▼
//	         the secure channel proves it  ───────► VerifyCertificate(net, cert, remote, now)
//	                                                 → Verified{Network, Org, PeerID, …}
//	                                                 or ErrMalformedCert, ErrWrongNetwork,
//	                                                    ErrUnknownOrg, ErrBadCertSignature,
//	                                                    ErrWrongPeer, ErrNotYetValid, ErrExpired
//
// The libp2p secure channel already proves which peer ID is on the other end,
// so a certificate only has to bind that peer ID to an org of this network:
// no TLS certificate is involved.
//
// # Files
//
//   - The network config is YAML (see ParseNetwork for the format). Every
//     mistake a user can make is reported as a *ConfigError naming the file,
//     the line, the field and the value, all mistakes at once.
//   - Private keys (peer and CA) are libp2p Ed25519 keys in libp2p's protobuf
//     encoding (crypto.MarshalPrivateKey), in files of mode 0600. LoadKey
//     refuses files readable by group or others, like ssh does.
//   - Certificates are PEM-armored protobuf (see WriteCertificate).
//
// All files are written atomically (temporary file, fsync, rename) and, unless
// the caller passes Replace, never over an existing file.
//
// The package does no I/O beyond those files and holds no goroutines; a
// *Network is immutable and safe for concurrent use.
package identity
