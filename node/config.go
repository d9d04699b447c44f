package node

import (
	"fmt"
	"time"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing/tree"
)

// Config holds the gossip tunables, named as Fabric names them. DefaultConfig
// gives Fabric's shipped values; LocalConfig derives faster timings for a
// testnet on one machine.
type Config struct {
	// PropagateIterations is how many successive emitter flushes carry each
	// message. 0 disables push entirely: blocks then move by pull only.
	PropagateIterations int
	// MaxPropagationBurstSize flushes the emitter at once when this many
	// messages are buffered.
	MaxPropagationBurstSize int
	// MaxPropagationBurstLatency is the emitter's flush period: the longest a
	// message waits before it is pushed.
	MaxPropagationBurstLatency time.Duration
	// PropagatePeerNum is the push fan-out: how many peers of the own org get
	// each batch of a channel's blocks, and each StateInfo or alive message.
	PropagatePeerNum int
	// CrossOrgPeerNum is how many external, eligible peers of each other
	// channel org a block is handed to when it crosses into that org.
	CrossOrgPeerNum int

	// PullInterval is the period of block anti-entropy per channel, and
	// PullPeerNum how many peers each round asks for a digest.
	PullInterval time.Duration
	PullPeerNum  int
	// MaxBlockCountToStore is the in-memory window of delivered blocks per
	// channel that pull serves from.
	MaxBlockCountToStore int
	// PullGrace is how long this peer holds a block before its pull serves
	// it, in digests and fetches. A block only just received is still being
	// pushed to the asker along the tree, a few milliseconds behind; a pull
	// round that falls in that moment would fetch it first, paying a digest
	// and a second copy, and take the delivery from push. The grace leaves
	// the young blocks to push and to the tree's own repair (digest and
	// graft); pull serves what push had its chance to bring. Longer than the
	// tree's usual delivery and graft time, shorter than its repair horizon
	// (Tree.Beacon): a block lost outright waits at most one more pull round.
	// 0 serves every block at once, as Fabric does, whose push leaves its
	// misses to pull alone (FabricStockConfig in the benchmark).
	PullGrace time.Duration

	// PublishStateInfoInterval is the shortest interval between two
	// publications of this peer's StateInfo for one channel (changes are
	// coalesced); RequestStateInfoInterval is the period of StateInfo snapshot
	// pulls.
	PublishStateInfoInterval time.Duration
	RequestStateInfoInterval time.Duration

	// AliveTimeInterval is the period of this peer's alive heartbeat;
	// AliveExpirationTimeout is how long a silent peer stays in the view.
	AliveTimeInterval      time.Duration
	AliveExpirationTimeout time.Duration
	// PublishCertPeriod is how long after start this peer's heartbeats
	// carry its certificate (Fabric's PublishCertPeriod). Later heartbeats
	// are slim (peer ID, incarnation, sequence, signature): peers learn the
	// certificate from a hello, a membership exchange or these first
	// heartbeats, and a slim heartbeat about a peer whose certificate is
	// not known yet makes its receiver ask its sender for the membership.
	PublishCertPeriod time.Duration
	// DirectAlive sends each heartbeat of this peer straight to every member
	// the audience lets learn of it, and forwards none: one copy per
	// receiver per interval. Off, heartbeats go as Fabric's do: to
	// PropagatePeerNum peers, each forwarding a new one once.
	DirectAlive bool
	// MembershipSyncInterval is the period of the full membership exchange
	// with PullPeerNum peers (Fabric's discovery sync, which runs every
	// PullInterval). A handshake and a heartbeat about an unknown peer
	// start one at once, so the period is only a backstop.
	MembershipSyncInterval time.Duration

	// MaxBlockBytes caps the data of one published block: at most 3 MiB
	// when ChunkThreshold is 0 (a single-frame block must fit the 4 MiB
	// frame with its batch), else at most chunk.DefaultMaxDataSize (64 MiB),
	// the most a receiver assembles.
	MaxBlockBytes int
	// ChunkThreshold is the data size above which Publish cuts a block into
	// chunks (issue #15): a signed header committing to ChunkSize chunks,
	// which travel unsigned, are checked on arrival and relayed as each
	// arrives (by stripes, ChunkStripes). Blocks up to it keep the single-frame path, byte
	// for byte. 0 turns chunking off (MaxBlockBytes then stays below a
	// frame). Every peer takes chunked blocks whatever its own threshold,
	// and announces that in its StateInfo; a publisher sends chunked
	// blocks only to peers that announced it. The default, 64 KiB, puts
	// 128 KiB blocks on the chunked path too: a relay then forwards the
	// first chunk while the second arrives, and checks a signature over the
	// header, not over the data (BENCHMARKS.md, "Chunks from 64 KiB").
	ChunkThreshold int
	// ChunkSize is the chunk size of blocks this peer publishes, from
	// chunk.DefaultMinChunkSize (16 KiB) to chunk.DefaultMaxChunkSize
	// (1 MiB): smaller cuts the delay each hop adds (it forwards a chunk
	// once it holds all of it), larger costs fewer messages and header
	// bytes (32 per chunk). The default, 32 KiB, was measured on the
	// bench at 1 MiB under a 100 Mbit/s egress limit, with stripes: a
	// relay sends each chunk to the rest of its org, so the chunk size is
	// that fan-out's tail (BENCHMARKS.md, "Stripes").
	ChunkSize int
	// MaxAssemblies and MaxAssemblyBytes cap the chunked blocks this peer
	// assembles at once, in count and in data bytes (each holds its whole
	// data once, however many peers send it): a header beyond them is
	// refused, uncounted against its sender, and comes back by the tree's
	// repair or pull once assemblies complete.
	MaxAssemblies    int
	MaxAssemblyBytes int
	// MaxChunkedWindowBytes caps the data of delivered chunked blocks kept
	// in the in-memory pull window (MaxBlockCountToStore would otherwise
	// allow 100 blocks of 64 MiB): the oldest beyond it leave memory, and
	// are served from the store if the node has one. The newest delivered
	// chunked block always stays.
	MaxChunkedWindowBytes int
	// ChunkRepairAfter is how long an incomplete chunked block may go
	// without a new chunk before this peer pulls its missing chunks, by
	// ranges, from peers that hold them (resumable: each round asks only
	// for what is still missing). A header accepted by pull asks at once.
	ChunkRepairAfter time.Duration
	// ChunkStripes stripes a chunked block's chunks over each org (with
	// DisseminationTree): the block's entry into the org sends each chunk
	// to one member, which relays it to the rest, so every peer sends
	// about one copy rather than one per eager child (stripe.go). Off,
	// the chunks follow the header along the tree.
	ChunkStripes bool

	// Dissemination says how blocks are pushed: DisseminationTree (the
	// default) along an eager tree per (channel, publisher) with lazy
	// digests (Plumtree, routing/tree), or DisseminationFabric, Fabric's
	// random push of PropagatePeerNum peers per hop through the emitter.
	// StateInfo and alive go through the emitter either way, and pull runs
	// either way.
	Dissemination Dissemination
	// Tree holds the tree's timers and bounds (DisseminationTree only).
	Tree tree.Config
}

// Dissemination names how a node pushes blocks.
type Dissemination string

// The ways to push blocks.
const (
	// DisseminationTree pushes along an eager tree with lazy digests.
	DisseminationTree Dissemination = "tree"
	// DisseminationFabric pushes as Fabric does: a random sample of
	// PropagatePeerNum peers per hop, forwarded once.
	DisseminationFabric Dissemination = "fabric"
)

// DefaultConfig returns Fabric's defaults (core.yaml and gossip's code
// defaults) for a peer on a real network.
func DefaultConfig() Config {
	return Config{
		PropagateIterations:        1,
		MaxPropagationBurstSize:    10,
		MaxPropagationBurstLatency: 10 * time.Millisecond,
		PropagatePeerNum:           3,
		CrossOrgPeerNum:            1,
		PullInterval:               4 * time.Second,
		PullPeerNum:                3,
		MaxBlockCountToStore:       100,
		PullGrace:                  500 * time.Millisecond,
		PublishStateInfoInterval:   4 * time.Second,
		RequestStateInfoInterval:   4 * time.Second,
		AliveTimeInterval:          5 * time.Second,
		AliveExpirationTimeout:     25 * time.Second,
		PublishCertPeriod:          10 * time.Second,
		DirectAlive:                true,
		MembershipSyncInterval:     25 * time.Second,
		MaxBlockBytes:              64 << 20,
		ChunkThreshold:             64 << 10,
		ChunkSize:                  chunk.DefaultChunkSize,
		MaxAssemblies:              8,
		MaxAssemblyBytes:           128 << 20,
		MaxChunkedWindowBytes:      64 << 20,
		ChunkRepairAfter:           time.Second,
		ChunkStripes:               true,
		Dissemination:              DisseminationTree,
		Tree:                       tree.DefaultConfig(),
	}
}

// LocalConfig returns DefaultConfig with the fast timings of a local testnet,
// where round trips cost microseconds and peers start within a second.
func LocalConfig() Config {
	c := DefaultConfig()
	c.PullInterval = 500 * time.Millisecond
	c.PublishStateInfoInterval = 500 * time.Millisecond
	c.RequestStateInfoInterval = 500 * time.Millisecond
	c.AliveTimeInterval = 500 * time.Millisecond
	c.AliveExpirationTimeout = 3 * time.Second
	c.PublishCertPeriod = 2 * time.Second
	c.MembershipSyncInterval = 3 * time.Second
	c.ChunkRepairAfter = 250 * time.Millisecond
	return c
}

// Validate reports the first setting that cannot work, naming it and its value.
func (c Config) Validate() error {
	positive := []struct {
		name string
		v    int
	}{
		{"MaxPropagationBurstSize", c.MaxPropagationBurstSize},
		{"PropagatePeerNum", c.PropagatePeerNum},
		{"PullPeerNum", c.PullPeerNum},
		{"MaxBlockCountToStore", c.MaxBlockCountToStore},
		{"MaxBlockBytes", c.MaxBlockBytes},
	}
	for _, f := range positive {
		if f.v <= 0 {
			return fmt.Errorf("node: %s must be positive, got %d", f.name, f.v)
		}
	}
	if c.PropagateIterations < 0 {
		return fmt.Errorf("node: PropagateIterations must be 0 or more, got %d", c.PropagateIterations)
	}
	if c.CrossOrgPeerNum < 0 {
		return fmt.Errorf("node: CrossOrgPeerNum must be 0 or more, got %d", c.CrossOrgPeerNum)
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"MaxPropagationBurstLatency", c.MaxPropagationBurstLatency},
		{"PullInterval", c.PullInterval},
		{"PublishStateInfoInterval", c.PublishStateInfoInterval},
		{"RequestStateInfoInterval", c.RequestStateInfoInterval},
		{"AliveTimeInterval", c.AliveTimeInterval},
		{"AliveExpirationTimeout", c.AliveExpirationTimeout},
		{"MembershipSyncInterval", c.MembershipSyncInterval},
	}
	for _, f := range durations {
		if f.v <= 0 {
			return fmt.Errorf("node: %s must be positive, got %v", f.name, f.v)
		}
	}
	if c.AliveExpirationTimeout <= c.AliveTimeInterval {
		return fmt.Errorf("node: AliveExpirationTimeout (%v) must exceed AliveTimeInterval (%v), or every peer expires between heartbeats",
			c.AliveExpirationTimeout, c.AliveTimeInterval)
	}
	if c.PublishCertPeriod < 0 {
		return fmt.Errorf("node: PublishCertPeriod must be 0 or more, got %v", c.PublishCertPeriod)
	}
	if c.PullGrace < 0 {
		return fmt.Errorf("node: PullGrace must be 0 or more, got %v", c.PullGrace)
	}
	switch c.Dissemination {
	case DisseminationTree:
		if err := c.Tree.Validate(); err != nil {
			return fmt.Errorf("node: Tree: %w", err)
		}
	case DisseminationFabric:
	default:
		return fmt.Errorf("node: Dissemination must be %q or %q, got %q", DisseminationTree, DisseminationFabric, c.Dissemination)
	}
	if c.ChunkThreshold == 0 && c.MaxBlockBytes > 3<<20 {
		return fmt.Errorf("node: MaxBlockBytes must be at most %d without chunking (a block must fit a 4 MiB frame), got %d", 3<<20, c.MaxBlockBytes)
	}
	if c.ChunkThreshold < 0 || c.ChunkThreshold > 3<<20 {
		return fmt.Errorf("node: ChunkThreshold must be 0 to %d (a block up to it must fit a frame), got %d", 3<<20, c.ChunkThreshold)
	}
	if c.ChunkThreshold > 0 {
		lim := chunk.DefaultLimits()
		if c.MaxBlockBytes > int(lim.MaxDataSize) {
			return fmt.Errorf("node: MaxBlockBytes must be at most %d, got %d", lim.MaxDataSize, c.MaxBlockBytes)
		}
		if c.ChunkSize < int(lim.MinChunkSize) || c.ChunkSize > int(lim.MaxChunkSize) {
			return fmt.Errorf("node: ChunkSize must be %d to %d, got %d", lim.MinChunkSize, lim.MaxChunkSize, c.ChunkSize)
		}
	}
	if c.MaxAssemblies <= 0 || c.MaxAssemblyBytes <= 0 {
		return fmt.Errorf("node: MaxAssemblies (%d) and MaxAssemblyBytes (%d) must be positive", c.MaxAssemblies, c.MaxAssemblyBytes)
	}
	if c.MaxChunkedWindowBytes < 0 {
		return fmt.Errorf("node: MaxChunkedWindowBytes must be 0 or more, got %d", c.MaxChunkedWindowBytes)
	}
	if c.ChunkRepairAfter <= 0 {
		return fmt.Errorf("node: ChunkRepairAfter must be positive, got %v", c.ChunkRepairAfter)
	}
	return nil
}
