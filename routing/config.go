package routing

import "fmt"

// Config holds the planner's fan-out settings. Fabric's names are kept.
type Config struct {
	// PropagatePeerNum is how many peers a message is pushed to within an audience: the size of the
	// per-channel block sample, of the org-restricted sample, and of each StateInfo and alive sample.
	// Larger values spread faster at the cost of more duplicates; 0 turns push off (pull only).
	PropagatePeerNum int
	// CrossOrgPeerNum is how many external peers of each other org of a channel receive a block that
	// crosses org boundaries (Message.CrossOrg). Every block then crosses each org boundary about
	// this many times per hop; 0 leaves cross-org delivery to pull.
	CrossOrgPeerNum int
}

// DefaultConfig returns Fabric's defaults: PropagatePeerNum 3, CrossOrgPeerNum 1. The local testnet
// preset uses the same values.
func DefaultConfig() Config {
	return Config{PropagatePeerNum: 3, CrossOrgPeerNum: 1}
}

// Validate reports the first setting that is out of range, naming the field and the value.
func (c Config) Validate() error {
	if c.PropagatePeerNum < 0 {
		return fmt.Errorf("routing: PropagatePeerNum must be >= 0, got %d", c.PropagatePeerNum)
	}
	if c.CrossOrgPeerNum < 0 {
		return fmt.Errorf("routing: CrossOrgPeerNum must be >= 0, got %d", c.CrossOrgPeerNum)
	}
	return nil
}
