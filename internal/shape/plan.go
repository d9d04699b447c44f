package shape

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxPlanSize caps a shaping file: a peer ID and an org name per peer.
const MaxPlanSize = 4 << 20

// Plan is the WAN shaping of a whole network of peer processes: the file
// (JSON) the testnet writes next to the network it generates, and every peer
// process reads when its config's testnet section names it. Every process
// draws the same link latencies from it, so both ends of a link agree on its
// latency, and the testnet computes the floor from the same draw.
type Plan struct {
	// Seed draws the link latencies (NewLatencies) and seeds every peer's
	// loss generator (with its index in Peers).
	Seed uint64 `json:"seed"`
	// IntraOrgLatency, InterOrgLatency and Jitter are the latency profile
	// (Profile); InterOrgLatency is also the latency from any peer not in
	// Peers.
	IntraOrgLatency Duration `json:"intra_org_latency"`
	InterOrgLatency Duration `json:"inter_org_latency"`
	Jitter          float64  `json:"jitter"`
	// EgressMbps is every peer's egress limit in Mbit/s (NewEgress); 0: none.
	EgressMbps float64 `json:"egress_mbps"`
	// Loss is the probability that a peer drops a frame it receives on the
	// push protocol (NewLoss); 0: none.
	Loss float64 `json:"loss"`
	// Peers are every peer of the network with its org, in the order the
	// latencies are drawn in.
	Peers []PlanPeer `json:"peers"`
}

// PlanPeer is one peer of a Plan.
type PlanPeer struct {
	ID  peer.ID `json:"id"`
	Org string  `json:"org"`
}

// Duration is a time.Duration written as text ("25ms") in a Plan.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Profile is the plan's latency profile.
func (p *Plan) Profile() Profile {
	return Profile{IntraOrg: time.Duration(p.IntraOrgLatency), InterOrg: time.Duration(p.InterOrgLatency), Jitter: p.Jitter}
}

// Validate reports every field out of range, naming it and its value.
func (p *Plan) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("shaping plan: %s = %v: want %s", field, v, want))
	}
	if p.IntraOrgLatency < 0 {
		bad("intra_org_latency", time.Duration(p.IntraOrgLatency), "0 or more")
	}
	if p.InterOrgLatency < 0 {
		bad("inter_org_latency", time.Duration(p.InterOrgLatency), "0 or more")
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		bad("jitter", p.Jitter, "a fraction in [0, 1)")
	}
	if p.EgressMbps < 0 {
		bad("egress_mbps", p.EgressMbps, "0 (off) or more")
	}
	if p.Loss < 0 || p.Loss >= 1 {
		bad("loss", p.Loss, "a probability in [0, 1)")
	}
	seen := map[peer.ID]bool{}
	for i, q := range p.Peers {
		switch {
		case q.ID == "":
			bad(fmt.Sprintf("peers[%d].id", i), `""`, "a peer ID")
		case seen[q.ID]:
			bad(fmt.Sprintf("peers[%d].id", i), q.ID, "each peer once")
		case q.Org == "":
			bad(fmt.Sprintf("peers[%d].org", i), `""`, "an org name")
		}
		seen[q.ID] = true
	}
	return errors.Join(errs...)
}

// Latencies draws the latency of every link between the plan's peers
// (index = position in Peers).
func (p *Plan) Latencies() *Latencies {
	orgs := map[string]int{}
	org := make([]int, len(p.Peers))
	for i, q := range p.Peers {
		o, ok := orgs[q.Org]
		if !ok {
			o = len(orgs)
			orgs[q.Org] = o
		}
		org[i] = o
	}
	return NewLatencies(org, p.Profile(), p.Seed)
}

// Index returns id's position in Peers, or -1.
func (p *Plan) Index(id peer.ID) int {
	for i, q := range p.Peers {
		if q.ID == id {
			return i
		}
	}
	return -1
}

// WritePlan writes p to path as JSON, refusing to replace a file.
func WritePlan(path string, p *Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// LoadPlan reads and validates the shaping file at path.
func LoadPlan(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shaping plan: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, MaxPlanSize+1))
	if err != nil {
		return nil, fmt.Errorf("shaping plan %s: %w", path, err)
	}
	if len(data) > MaxPlanSize {
		return nil, fmt.Errorf("shaping plan %s: larger than %d bytes", path, MaxPlanSize)
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("shaping plan %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}
