package discovery

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultDHTPrefix is the protocol prefix of the fabgossip DHT: its
// protocol is "/fabgossip/kad/1.0.0", so it never talks to the public IPFS
// DHT ("/ipfs/kad/1.0.0").
const DefaultDHTPrefix = "/fabgossip"

// Config says where candidates come from and how hard to try them. Start
// from DefaultConfig (a real network) or LocalConfig (many peers on one
// machine), set Network, and change fields.
type Config struct {
	// Network is the name of the fabgossip network. It derives the DHT
	// namespace ("fabgossip/<Network>") and the mDNS service
	// ("_fabgossip-<Network>._udp"), so that peers of different networks do
	// not find each other. Letters, digits, '.', '_' and '-'; at most 40.
	Network string

	// Bootstrap lists the multiaddrs of bootstrap peers, each ending in
	// /p2p/<peer ID>. Several addresses of one peer are merged.
	Bootstrap []string

	// MDNS turns on mDNS discovery on the local link.
	MDNS bool

	// DHT turns on the private DHT and routing discovery.
	DHT bool
	// DHTPrefix is the DHT protocol prefix; it must not be "/ipfs".
	DHTPrefix string
	// Namespace is what peers advertise and look up on the DHT. Empty means
	// "fabgossip/<Network>".
	Namespace string
	// AdvertiseInterval is how often a peer re-advertises itself. Provider
	// records live for hours; re-advertising also follows the record TTL
	// (at three quarters of it) when that is shorter.
	AdvertiseInterval time.Duration
	// FindPeersInterval is how often the namespace is looked up. Each
	// lookup is a DHT query; new peers are found within this interval.
	FindPeersInterval time.Duration
	// FindPeersLimit caps the peers one lookup returns.
	FindPeersLimit int
	// QueryTimeout bounds one Advertise or FindPeers.
	QueryTimeout time.Duration

	// Backoff paces bootstrap redials and retries of failed DHT queries.
	Backoff Backoff

	// DialTimeout bounds one dial of a candidate or bootstrap peer.
	DialTimeout time.Duration
	// MaxConcurrentDials bounds candidate dials in flight; candidates found
	// while all are busy are dropped (they are found again later).
	MaxConcurrentDials int
	// CandidateRedialInterval is the least time between two dials of the
	// same candidate (mDNS, DHT, AddCandidate), so that a peer repeated in
	// every alive message or lookup is not dialled every time.
	CandidateRedialInterval time.Duration
	// CandidateAddrTTL is how long the addresses of an AddCandidate stay in
	// the peerstore if no connection is made.
	CandidateAddrTTL time.Duration
}

// DefaultConfig is for a real network: bootstrap redial from 1 s up to
// 1 min, DHT lookups every 30 s, re-advertising every 10 min, 8 concurrent
// dials of 10 s each, a candidate redialled at most every 30 s. mDNS and the
// DHT are off; Network must be set.
func DefaultConfig() Config {
	return Config{
		DHTPrefix:               DefaultDHTPrefix,
		AdvertiseInterval:       10 * time.Minute,
		FindPeersInterval:       30 * time.Second,
		FindPeersLimit:          64,
		QueryTimeout:            30 * time.Second,
		Backoff:                 Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.2},
		DialTimeout:             10 * time.Second,
		MaxConcurrentDials:      8,
		CandidateRedialInterval: 30 * time.Second,
		CandidateAddrTTL:        10 * time.Minute,
	}
}

// LocalConfig is DefaultConfig for many peers on one machine, where
// everything answers within milliseconds: redial from 100 ms up to 5 s,
// lookups every second, candidates redialled after 2 s.
func LocalConfig() Config {
	cfg := DefaultConfig()
	cfg.AdvertiseInterval = time.Minute
	cfg.FindPeersInterval = time.Second
	cfg.QueryTimeout = 5 * time.Second
	cfg.Backoff = Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	cfg.DialTimeout = 5 * time.Second
	cfg.CandidateRedialInterval = 2 * time.Second
	return cfg
}

var networkName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,40}$`)

// Validate reports the first invalid field, naming it and its value. The
// error wraps ErrInvalidConfig (and ErrNoPeerID for a bootstrap address
// without a peer ID).
func (c Config) Validate() error {
	if !networkName.MatchString(c.Network) {
		return invalid("Network", fmt.Sprintf("%q", c.Network), "must be 1 to 40 letters, digits, '.', '_' or '-'")
	}
	for i, s := range c.Bootstrap {
		if _, err := ParseAddrInfos([]string{s}); err != nil {
			return fmt.Errorf("%w: Bootstrap[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	if c.DHT {
		if !strings.HasPrefix(c.DHTPrefix, "/") || c.DHTPrefix == "/ipfs" {
			return invalid("DHTPrefix", fmt.Sprintf("%q", c.DHTPrefix), `must start with "/" and must not be the public "/ipfs"`)
		}
	}
	checks := []struct {
		field string
		value time.Duration
	}{
		{"AdvertiseInterval", c.AdvertiseInterval},
		{"FindPeersInterval", c.FindPeersInterval},
		{"QueryTimeout", c.QueryTimeout},
		{"Backoff.Base", c.Backoff.Base},
		{"DialTimeout", c.DialTimeout},
		{"CandidateAddrTTL", c.CandidateAddrTTL},
	}
	for _, ch := range checks {
		if ch.value <= 0 {
			return invalid(ch.field, ch.value, "must be positive")
		}
	}
	switch {
	case c.FindPeersLimit <= 0:
		return invalid("FindPeersLimit", c.FindPeersLimit, "must be positive")
	case c.Backoff.Max < c.Backoff.Base:
		return invalid("Backoff.Max", c.Backoff.Max, fmt.Sprintf("must be at least Backoff.Base (%v)", c.Backoff.Base))
	case c.Backoff.Jitter < 0 || c.Backoff.Jitter > 1:
		return invalid("Backoff.Jitter", c.Backoff.Jitter, "must be within [0, 1]")
	case c.MaxConcurrentDials <= 0:
		return invalid("MaxConcurrentDials", c.MaxConcurrentDials, "must be positive")
	case c.CandidateRedialInterval < 0:
		return invalid("CandidateRedialInterval", c.CandidateRedialInterval, "must not be negative")
	}
	return nil
}

// namespace is the DHT namespace of the network.
func (c Config) namespace() string {
	if c.Namespace != "" {
		return c.Namespace
	}
	return "fabgossip/" + c.Network
}

// mdnsService is the DNS-SD service type of the network.
func (c Config) mdnsService() string {
	return "_fabgossip-" + c.Network + "._udp"
}

// ParseAddrInfos parses multiaddrs that end in /p2p/<peer ID> (for example
// "/ip4/10.0.0.5/tcp/7051/p2p/12D3KooW..."), merging addresses of the same
// peer, in the order the peers first appear. An address without a peer ID is
// an error wrapping ErrNoPeerID.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int)
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("discovery: address %q: %w", s, err)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrNoPeerID, s)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("discovery: address %q: %w", s, err)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

func invalid(field string, value any, why string) error {
	return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, value, why)
}
