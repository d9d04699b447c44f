// Package discovery finds candidate peers for a fabgossip node and connects
// to them.
//
// Candidates come from four sources (Source):
//
//   - the bootstrap list (Config.Bootstrap): dialled at Start and, while not
//     connected, redialled with capped exponential back-off and jitter; a
//     bootstrap peer whose connection drops is redialled again;
//   - mDNS on the local link (Config.MDNS), for development and LANs;
//   - a private Kademlia DHT (Config.DHT) with the "/fabgossip" protocol
//     prefix, so it never joins the public IPFS DHT: every peer advertises
//     itself under the network's namespace ("fabgossip/<network>") with
//     libp2p routing discovery and periodically looks up the others;
//   - the node itself (AddCandidate): addresses of external peers learned
//     from alive messages.
//
// Discovery is not admission. Anyone can answer mDNS or advertise a DHT
// namespace, so a candidate is only ever dialled; package node runs the hello
// handshake on every new connection and blocks peers that fail it.
//
// Dials of candidates share one bounded pool (Config.MaxConcurrentDials),
// each with a timeout (Config.DialTimeout), at most one in flight per peer,
// and a candidate is not redialled within Config.CandidateRedialInterval.
//
// A Discovery owns its goroutines: Start launches them, Close cancels them
// and waits for them, and a Tracer reports what happened, for tests and
// metrics.
package discovery
