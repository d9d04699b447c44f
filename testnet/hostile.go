package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fabgossip/fabgossip/node/admin"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/peerconfig"
)

// The hostile-peer suite (fabgossip hostile): a target peer and an honest
// peer run as OS processes, as `fabgossip peer` runs them; the attacks come
// from this process, from libp2p hosts with keys of their own (outsiders) or
// with the key and certificate of a member of the target's org (an insider,
// run here as a library peer). For each attack the target's resident memory
// and CPU time are read from /proc before, during and after, and the attack
// is held to a bound: what the target does (resets, disconnects, ejects)
// and what it costs it against what the attacker sent.

// HostileOptions configures RunHostile.
type HostileOptions struct {
	// Binary is the fabgossip executable for the target and honest peers;
	// empty means this process's own.
	Binary string
	// Short is CI's form: fewer frames per attack and a 3 s flood; the
	// bounds on wall time against a baseline (a genuine peer's admission
	// among stallers, honest latency under flood) are reported, not
	// enforced, as shared CI machines make them noisy.
	Short bool
	// Flood is how long the flood attacks last (default 10 s, 3 s Short).
	Flood time.Duration
	// StartTimeout bounds the start of the two peer processes and the
	// insider's admission.
	StartTimeout time.Duration
	// Out receives progress and the report table; nil discards.
	Out io.Writer
	// LogLevel is the peers' log level (default info).
	LogLevel string
	// Dir, if set, is where the network is generated and kept; otherwise a
	// temporary directory, removed at the end.
	Dir string
	// Profile writes the target's CPU and heap profiles (cpu.pprof and
	// heap.pprof, for go tool pprof) into its directory; it needs Dir.
	Profile bool
	// Only, if set, runs just the attacks whose names contain one of its
	// comma-separated parts (case-insensitive), e.g. "flood".
	Only string
}

// ErrHostileFailed is returned by RunHostile when an attack broke its
// bound.
var ErrHostileFailed = errors.New("testnet: an attack broke its bound")

// AttackResult is one attack's outcome.
type AttackResult struct {
	Name string `json:"name"`
	// What the attacker did, and the bytes it wrote (or tried to: a reset
	// stream takes fewer).
	What      string `json:"what"`
	SentBytes int64  `json:"sent_bytes"`
	// The target's resident set before the attack and its peak during it,
	// and the CPU time it used over the attack (including its idle work).
	RSSBeforeMiB float64 `json:"rss_before_mib"`
	RSSPeakMiB   float64 `json:"rss_peak_mib"`
	CPUMs        float64 `json:"cpu_ms"`
	// Outcome is what the target did; Bound the rule it is held to.
	Outcome string `json:"outcome"`
	Bound   string `json:"bound"`
	OK      bool   `json:"ok"`
}

// HostileReport is RunHostile's result.
type HostileReport struct {
	Attacks []AttackResult `json:"attacks"`
	// IdleCPUMsPerS is the target's CPU time per second while nobody
	// attacks it, for reading CPUMs.
	IdleCPUMsPerS float64 `json:"idle_cpu_ms_per_s"`
	Passed        bool    `json:"passed"`
}

// WriteTable prints the report as a markdown table.
func (r *HostileReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nTarget's idle CPU: %.1f ms/s.\n\n", r.IdleCPUMsPerS)
	fmt.Fprintln(w, "| attack | sent | target RSS before → peak (MiB) | target CPU (ms) | outcome | bound | ok |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, a := range r.Attacks {
		ok := "yes"
		if !a.OK {
			ok = "**NO**"
		}
		fmt.Fprintf(w, "| %s: %s | %s | %.1f → %.1f | %.0f | %s | %s | %s |\n",
			a.Name, a.What, fmtBytes(uint64(a.SentBytes)), a.RSSBeforeMiB, a.RSSPeakMiB, a.CPUMs, a.Outcome, a.Bound, ok)
	}
}

// RunHostile generates a network (org A of five peers and org B of one;
// channel ch of org A, ch2 of both), starts A's first two peers as processes, the first
// being the target, runs every attack against the target and reports.
// It returns ErrHostileFailed with the report when an attack broke its
// bound.
func RunHostile(ctx context.Context, o HostileOptions) (*HostileReport, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Flood <= 0 {
		o.Flood = 10 * time.Second
		if o.Short {
			o.Flood = 3 * time.Second
		}
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if err := procSupported(); err != nil {
		return nil, err
	}
	if o.Profile && o.Dir == "" {
		return nil, errors.New("testnet: HostileOptions.Profile needs Dir, where the profiles are kept")
	}
	bin, dir, cleanup, err := workspace(o.Binary, o.Dir, "fabgossip-hostile-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	layout := peerconfig.Layout{
		Network: "hostile",
		Orgs:    []peerconfig.OrgLayout{{Name: "A", Peers: 5, External: 1}, {Name: "B", Peers: 1, External: 1}},
		// ch2 lets org B's peer talk to A's external peers, the target
		// among them, without being a member of ch.
		Channels: []identity.Channel{
			{Name: "ch", Orgs: []string{"A"}, Publishers: []string{"A"}},
			{Name: "ch2", Orgs: []string{"A", "B"}, Publishers: []string{"A"}},
		},
		Peer: func(_ peerconfig.GeneratedPeer, c *peerconfig.Config) {
			c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			// Outsiders come from other loopback addresses, each one's
			// connections limited as they would be on a network.
			c.LimitExempt = []string{"127.0.0.1/32", "::1/128"}
			c.Admin.Address = "127.0.0.1:0"
			c.Gossip.Preset = peerconfig.PresetLocal
		},
	}
	peers, err := peerconfig.WriteLayout(dir, layout)
	if err != nil {
		return nil, err
	}
	byName := func(name string) peerconfig.GeneratedPeer {
		i := slices.IndexFunc(peers, func(g peerconfig.GeneratedPeer) bool { return g.Name == name })
		return peers[i]
	}
	procCtx, cancel := context.WithCancel(context.Background())
	var procs []*process
	defer func() { stopAll(cancel, procs) }()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()

	deadline := time.Now().Add(o.StartTimeout)
	var profile []string
	if o.Profile {
		td := filepath.Dir(byName("peer0.A").Config)
		profile = []string{"--cpuprofile", filepath.Join(td, "cpu.pprof"), "--memprofile", filepath.Join(td, "heap.pprof")}
	}
	target, err := startProcess(procCtx, bin, byName("peer0.A"), nil, o.LogLevel, profile...)
	if err != nil {
		return nil, err
	}
	procs = append(procs, target)
	if err := target.waitReady(ctx, deadline); err != nil {
		return nil, err
	}
	honest, err := startProcess(procCtx, bin, byName("peer1.A"), target.bootstrapAddrs(), o.LogLevel)
	if err != nil {
		return nil, err
	}
	procs = append(procs, honest)
	if err := honest.waitReady(ctx, deadline); err != nil {
		return nil, err
	}
	if err := waitMember(ctx, target, honest.peer.ID.String(), deadline); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "hostile: target %s (pid %d) and honest %s up, in %s\n", target.peer.Name, target.cmd.Process.Pid, honest.peer.Name, dir)

	s := &suite{o: o, target: target, honest: honest, insider: byName("peer2.A"), foreign: byName("peer0.B"),
		replayer: byName("peer3.A"), garbler: byName("peer4.A")}
	defer func() { _ = s.closeMembers() }()
	rep := &HostileReport{}
	if rep.IdleCPUMsPerS, err = s.idleCPU(ctx); err != nil {
		return nil, err
	}
	s.idle = rep.IdleCPUMsPerS / 1000
	attacks := s.attacks()
	if o.Only != "" {
		attacks = slices.DeleteFunc(attacks, func(a attack) bool { return !selected(a.name, o.Only) })
		if len(attacks) == 0 {
			return nil, fmt.Errorf("testnet: no attack matches %q", o.Only)
		}
	}
	for _, a := range attacks {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if target.exited() {
			return rep, target.exitError()
		}
		fmt.Fprintf(o.Out, "hostile: %s ...\n", a.name)
		res, err := s.measure(ctx, a)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", a.name, err)
		}
		fmt.Fprintf(o.Out, "hostile: %s: %s (RSS %.1f → %.1f MiB, CPU %.0f ms)\n", a.name, res.Outcome, res.RSSBeforeMiB, res.RSSPeakMiB, res.CPUMs)
		rep.Attacks = append(rep.Attacks, res)
	}
	if target.exited() {
		return rep, target.exitError()
	}
	rep.Passed = !slices.ContainsFunc(rep.Attacks, func(a AttackResult) bool { return !a.OK })
	rep.WriteTable(o.Out)
	if !rep.Passed {
		return rep, ErrHostileFailed
	}
	return rep, nil
}

// selected reports whether name contains one of only's comma-separated
// parts, ignoring case.
func selected(name, only string) bool {
	for part := range strings.SplitSeq(only, ",") {
		if part = strings.TrimSpace(part); part != "" && strings.Contains(strings.ToLower(name), strings.ToLower(part)) {
			return true
		}
	}
	return false
}

// waitMember waits until p's admin status lists the peer id as live.
func waitMember(ctx context.Context, p *process, id string, deadline time.Time) error {
	for {
		st, err := p.client.Status(ctx)
		if err == nil && slices.ContainsFunc(st.Peers, func(ps admin.PeerStatus) bool { return ps.ID == id && ps.Alive }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("peer %s never saw %s as a member; last log lines:\n%s", p.peer.Name, id, p.logTail(8))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// outcome joins the things the target did, for the report.
func outcome(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "; ")
}
