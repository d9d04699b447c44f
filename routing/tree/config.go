package tree

import (
	"fmt"
	"time"
)

// RTTFactor is how many observed round trips of the announcer link the missing-block timer waits
// at least. An IHAVE travels one way after its sender got the block; the payload through the tree
// may still be a few one-way hops behind it. Two round trips (four one-way latencies) leave room
// for that, so a tree that is only slow is not healed: grafting too early doubles traffic.
const RTTFactor = 2

// LagFactor is how many times the observed lag of payloads behind their IHAVEs (under load,
// payloads queue behind other frames while IHAVEs, small, overtake them) the missing-block timer
// waits, at most MaxLagWait: grafting a block that is merely late costs a duplicate, and a tree
// whose links are grafted faster than payloads arrive keeps every duplicate's link eager.
const (
	LagFactor  = 2
	MaxLagWait = 500 * time.Millisecond
)

// fullHold is how long a peer that refused a graft as full is grafted after the other announcers
// of a block. It may gain room when its children leave, so the mark is not forever.
const fullHold = 10 * time.Second

// graftRounds is how many times the announcers of a missing block are grafted in turn before the
// entry is given up and left to pull. It bounds the grafts one false announcement can cause.
const graftRounds = 5

// Config holds the tree's timers and bounds. Every field but Beacon must be positive.
type Config struct {
	// GraftTimeout is the floor of the wait after an IHAVE for a missing block before the
	// announcer is grafted. The wait is max(GraftTimeout, RTTFactor × observed RTT of the announcer
	// link), plus up to an eighth drawn at random so that the children of a crashed parent do not
	// all graft in the same instant. Shorter heals faster but grafts links that were only slow.
	GraftTimeout time.Duration
	// RetryTimeout is how long a graft's payload is awaited before the next announcer is grafted,
	// at least RTTFactor × the RTT of the grafted link. One graft per block is outstanding.
	RetryTimeout time.Duration
	// PruneGuard keeps a link grafted less than this long ago from being pruned or demoted:
	// duplicates are expected while a graft takes effect, and pruning on them makes the tree flap.
	PruneGuard time.Duration
	// PruneWindow is how far below the highest number received in a tree a duplicate may be and
	// still prune its link. Duplicates of older blocks come from pull and graft answers, not from a
	// redundant eager link, and pruning on them removes good links.
	PruneWindow uint64
	// InitialEager is about how many eager links each peer starts each tree with inside its org.
	// Both ends of a link decide alike from a hash of the tree and the pair, so the initial eager
	// relation is symmetric without any message. Cross-org links (doors) always start eager, so
	// every org is reached by the first block. Larger values cost duplicates on the first blocks;
	// smaller ones cost grafts.
	InitialEager int
	// MaxEager caps a peer's own-org children in one tree: the eager links inside its org it
	// pushes payloads on, besides the one they arrive by. Doors are not counted (Doors bounds them,
	// and a door refused would cost its org a second cross-org hop). In a clique of equal links the tree that first arrivals build is a
	// star around the root (every peer grafts the first announcer, and the root announces first),
	// so the root sends every block once per member and its egress is the whole tree's. A GRAFT
	// beyond the cap is refused with a PRUNE marked full and no payload: the grafter grafts its
	// other announcers first (at once for the block it asked), and comes back only if they fail,
	// within PruneGuard, when it is taken over the cap. A tree that holds more children (the
	// initial rule, doors) prunes the excess, marked full, on its next payload. 0 is no cap.
	MaxEager int
	// Doors is how many cross-org links each pair of orgs of a channel has, between their external
	// peers. More doors cost IHAVE traffic across org boundaries and buy recovery paths.
	Doors int
	// MaxIHave caps the numbers of one IHAVE and of one GRAFT, in both directions: longer inputs
	// are cut, longer outputs are split.
	MaxIHave int
	// MaxMissing caps the missing-block entries per tree; announcements beyond it are ignored
	// (pull repairs what that costs), so a peer announcing millions of numbers costs bounded state.
	MaxMissing int
	// MaxAnnouncers caps the announcers remembered per missing block: the peers grafted in turn.
	MaxAnnouncers int
	// MaxTrees caps the trees (roots) per channel. Beyond it the least recently used tree is
	// dropped, trees that never carried a payload first, so announcements for invented roots
	// cannot push out the trees that carry blocks.
	MaxTrees int
	// Beacon is the period of the height beacon: each tree's highest number, if it advanced since
	// the last beacon, is announced to every link, eager ones included. It repairs the last block
	// before a pause when its payload was lost on an eager link; 0 turns it off (pull then does).
	Beacon time.Duration
}

// DefaultConfig returns timers sized for 2 ms links inside an org and 25 ms links across orgs,
// and bounds a little above what one IHAVE frame and a channel's publishers need.
func DefaultConfig() Config {
	return Config{
		GraftTimeout:  30 * time.Millisecond,
		RetryTimeout:  60 * time.Millisecond,
		PruneGuard:    time.Second,
		PruneWindow:   16,
		InitialEager:  4,
		MaxEager:      4,
		Doors:         2,
		MaxIHave:      64,
		MaxMissing:    1024,
		MaxAnnouncers: 4,
		MaxTrees:      16,
		Beacon:        time.Second,
	}
}

// Validate reports the first setting that is out of range, naming the field and the value.
func (c Config) Validate() error {
	durations := []struct {
		name string
		v    time.Duration
	}{{"GraftTimeout", c.GraftTimeout}, {"RetryTimeout", c.RetryTimeout}, {"PruneGuard", c.PruneGuard}}
	for _, d := range durations {
		if d.v <= 0 {
			return fmt.Errorf("tree: %s must be > 0, got %v", d.name, d.v)
		}
	}
	if c.Beacon < 0 {
		return fmt.Errorf("tree: Beacon must be >= 0, got %v", c.Beacon)
	}
	if c.MaxEager < 0 {
		return fmt.Errorf("tree: MaxEager must be >= 0, got %d", c.MaxEager)
	}
	if c.PruneWindow == 0 {
		return fmt.Errorf("tree: PruneWindow must be > 0, got %d", c.PruneWindow)
	}
	ints := []struct {
		name string
		v    int
	}{
		{"InitialEager", c.InitialEager}, {"Doors", c.Doors}, {"MaxIHave", c.MaxIHave},
		{"MaxMissing", c.MaxMissing}, {"MaxAnnouncers", c.MaxAnnouncers}, {"MaxTrees", c.MaxTrees},
	}
	for _, f := range ints {
		if f.v <= 0 {
			return fmt.Errorf("tree: %s must be > 0, got %d", f.name, f.v)
		}
	}
	return nil
}
