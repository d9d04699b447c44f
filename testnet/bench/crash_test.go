package bench

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// runCrash runs the tiny topology with a third of its peers crashing: 2 of
// 6, one per org (org0's non-publisher peers 1 and 2, org1's external peers
// 3 and 4, one of which must stay; 0 publishes and 5 is ch1's curious
// non-member).
func runCrash(t *testing.T, systems ...string) *Report {
	t.Helper()
	o := tinyOptions(systems...)
	o.CrashFraction = 0.34
	rep, err := Run(context.Background(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(systems) {
		t.Fatalf("got %d results, want %d", len(rep.Results), len(systems))
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Fatalf("%s failed: %s", r.System, r.Error)
		}
		c := r.Crash
		if c == nil {
			t.Fatalf("%s: no crash metrics", r.System)
		}
		if len(c.CrashedPeers) != 2 || !slices.ContainsFunc(c.CrashedPeers, func(p int) bool { return p == 1 || p == 2 }) ||
			!slices.ContainsFunc(c.CrashedPeers, func(p int) bool { return p == 3 || p == 4 }) {
			t.Errorf("%s: crashed peers %v, want one of 1, 2 and one of 3, 4", r.System, c.CrashedPeers)
		}
		// E(b) leaves the crashed peers out for every block: ch0 has 6
		// members, ch1 3, less the publisher and the crashed (one of ch1's).
		if r.Blocks != 10 || r.Pairs != 5*3+5*1 {
			t.Errorf("%s: blocks %d pairs %d, want 10 and 20", r.System, r.Blocks, r.Pairs)
		}
		// Crash after block 1 of both channels: ch1's blocks 2–4 always
		// follow it, ch0's unless the crash started late.
		if c.PostCrashBlocks < 3 || c.PostCrashBlocks > 6 || c.PostCrashPairs < 3 {
			t.Errorf("%s: %d post-crash blocks, %d pairs, want 3–6 blocks", r.System, c.PostCrashBlocks, c.PostCrashPairs)
		}
		if c.CrashAtSeconds <= 0 || c.CrashTookMs < 0 || c.Fraction != 0.34 {
			t.Errorf("%s: crash at %v s took %v ms fraction %v, want them filled", r.System, c.CrashAtSeconds, c.CrashTookMs, c.Fraction)
		}
		if c.LiveCov2s < 0 || c.LiveCov2s > 1 || c.PostCrashPFull2s < 0 || c.PostCrashPFull2s > 1 {
			t.Errorf("%s: live_cov_2s %v, P_full in 2 s %v, want fractions", r.System, c.LiveCov2s, c.PostCrashPFull2s)
		}
		if r.CovFinal != 1 || c.PostCrashCovFinal != 1 || c.PostCrashTFullP99Ms <= 0 {
			t.Errorf("%s: cov_final %v, after the crash %v (T_full p99 %v ms), want every live member to have every block",
				r.System, r.CovFinal, c.PostCrashCovFinal, c.PostCrashTFullP99Ms)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"crash", "crashed_peers", "crash_at_seconds", "live_cov_2s", "post_crash_t_full_p99_ms", "crash_fraction"} {
		if !strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("JSON lacks %q", key)
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "Crash fault:") || !strings.Contains(md, "live_cov_2s") {
		t.Errorf("markdown has no crash table:\n%s", md)
	}
	if err := rep.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	return rep
}

func TestFabgossipRepairsAfterCrash(t *testing.T) {
	r := runCrash(t, SystemFabgossip).Results[0]
	if r.Leaks != 0 {
		t.Errorf("leaks = %d, want 0", r.Leaks)
	}
}

// GossipSub's and direct's crash close hosts; direct's publisher must not
// stall on a dead member.
func TestGossipSubAndDirectSurviveCrash(t *testing.T) {
	runCrash(t, SystemGossipSub, SystemDirect)
}

func TestNoCrashNoCrashTable(t *testing.T) {
	rep := &Report{Results: []Result{{System: SystemFabgossip, CovFinal: 1}}, Topology: TopologySummary{PeersPerOrg: []int{1}}}
	if md := rep.Markdown(); strings.Contains(md, "Crash fault") {
		t.Errorf("a run without a crash has a crash table:\n%s", md)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"crash`) {
		t.Errorf("a run without a crash has crash JSON: %s", b)
	}
}

func TestCrashVictims(t *testing.T) {
	layoutOf := func(scale string, external int) *layout {
		t.Helper()
		topo, err := ScaleTopology(scale)
		if err != nil {
			t.Fatal(err)
		}
		for i := range topo.Orgs {
			topo.Orgs[i].External = external
		}
		l, err := newLayout(topo)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	check := func(name string, l *layout, f float64, want int) {
		t.Helper()
		protected := map[int]bool{}
		for _, ch := range l.channels {
			protected[ch.publisher] = true
			protected[ch.curious] = true
		}
		seen := map[string]bool{}
		for seed := range uint64(20) {
			v, err := crashVictims(l, f, seed)
			if err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			again, _ := crashVictims(l, f, seed)
			if !slices.Equal(v, again) {
				t.Errorf("%s seed %d: %v then %v, want the same peers for the same seed", name, seed, v, again)
			}
			if len(v) != want || !slices.IsSorted(v) {
				t.Errorf("%s seed %d: %v, want %d peers, ascending", name, seed, v, want)
			}
			perOrg := make([]int, len(l.topo.Orgs))
			extLeft := make([]int, len(l.topo.Orgs))
			for p, o := range l.org {
				if l.external[p] {
					extLeft[o]++
				}
			}
			for _, p := range v {
				if protected[p] {
					t.Errorf("%s seed %d: crashes peer %d, a publisher or curious non-member", name, seed, p)
				}
				perOrg[l.org[p]]++
				if l.external[p] {
					extLeft[l.org[p]]--
				}
			}
			if slices.Max(perOrg)-slices.Min(perOrg) > 1 {
				t.Errorf("%s seed %d: per org %v, want them spread", name, seed, perOrg)
			}
			if slices.Min(extLeft) < 1 {
				t.Errorf("%s seed %d: %v leaves an org without an external peer", name, seed, v)
			}
			seen[ints(v)] = true
		}
		if len(seen) < 2 {
			t.Errorf("%s: the same peers for 20 seeds", name)
		}
	}
	check("S", layoutOf(ScaleS, 2), 0.1, 5)
	check("L", layoutOf(ScaleL, 2), 0.1, 20)
	check("S, one external per org", layoutOf(ScaleS, 1), 0.5, 25)

	tiny, err := newLayout(makeTopology(2, 3, [][]int{{0, 1}, {0}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []float64{-0.1, 0.01, 0.9, 1} {
		if v, err := crashVictims(tiny, f, 1); err == nil {
			t.Errorf("fraction %v of the tiny topology: %v, want an error", f, v)
		}
	}
}
