package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestSummaryAndReadReport(t *testing.T) {
	rep := &Report{
		Command:  "fabgossip bench --test",
		Topology: TopologySummary{Scale: "S", Orgs: 1, PeersPerOrg: []int{3}, Channels: []ChanInfo{{Name: "ch0", Members: 3}}},
		Workload: Workload{Seeds: []uint64{1, 2}, Network: NetworkMock},
		Results: []Result{
			{System: SystemFabgossip, BlockSize: 1 << 10, Seed: 1, CovPush: 0.9, CovFinal: 1, TFullP50Ms: 10, TFullP99Ms: 100, TFullP99OverFloor: 2, AWire: 3},
			{System: SystemFabgossip, BlockSize: 1 << 10, Seed: 2, CovPush: 1, CovFinal: 1, TFullP50Ms: 30, TFullP99Ms: 100, TFullP99OverFloor: 4, AWire: 3, Leaks: 2},
			{System: SystemDirect, BlockSize: 1 << 10, Seed: 1, Error: "boom"},
			{System: SystemDirect, BlockSize: 1 << 10, Seed: 2, CovPush: 1, CovFinal: 1, TFullP50Ms: 5, TFullP99Ms: 7},
		},
	}
	s := rep.Summary()
	for _, want := range []string{
		"| fabgossip | 1 KiB | 2 | 0.9500 (0.9000–1.0000) |",
		"| 20 (10–30) | 100 | 3.0 (2.0–4.0) |",
		"| 3.00 |",
		"| 2 |", // leaks summed over seeds
		"| direct | 1 KiB | 1 (+1 failed) |",
		"| direct | 1 KiB | 1 (+1 failed) | 1.0000 | 0.000 | 1.0000 | 5 | 7 | n/a |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if one := (&Report{Workload: Workload{Seeds: []uint64{1}}}).Summary(); one != "" {
		t.Errorf("single-seed summary = %q, want none", one)
	}

	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := back.Markdown(), rep.Markdown(); got != want {
		t.Errorf("markdown after a JSON round trip differs:\n%s\nwant\n%s", got, want)
	}
	if _, err := ReadReport(strings.NewReader(`{"results": []}`)); err == nil {
		t.Error("an empty report was read without error")
	}
}

// meets is a fabgossip run that meets every target at 128 KiB.
func meets(seed uint64) Result {
	return Result{
		System: SystemFabgossip, BlockSize: HeadlineBlockSize, Seed: seed, Blocks: 300, CovFinal: 1,
		PFullPush: 1, RMR: 0.02, AWire: 1.05, TFullOverFloor: 1.1, TFullP99OverFloor: 1.4, TFullP99Ms: 50,
		IdleControlBytesPerSPerPeerPerChannel: 90, FloorMs: []float64{30},
	}
}

func gossipsub(seed uint64, p99 float64) Result {
	return Result{System: SystemGossipSub, BlockSize: HeadlineBlockSize, Seed: seed, TFullP99Ms: p99, Leaks: 300}
}

func TestGaps(t *testing.T) {
	with := func(seed uint64, f func(*Result)) Result { r := meets(seed); f(&r); return r }
	all := func(s GapStatus) map[string]GapStatus {
		m := map[string]GapStatus{}
		for _, tg := range Targets() {
			m[tg.Name] = s
		}
		return m
	}
	override := func(m map[string]GapStatus, kv ...any) map[string]GapStatus {
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(GapStatus)
		}
		return m
	}
	const (
		pFull   = "P_full_push ≥ 0.999"
		rmr     = "RMR ≤ 0.10"
		aWire   = "A_wire ≤ 1.2"
		p50     = "T_full p50 ≤ 1.3 × floor"
		p99     = "T_full p99 ≤ 2 × floor"
		vsGS    = "T_full p99 ≤ 0.6 × GossipSub's p99"
		leaks   = "leaks = 0"
		idle    = "idle control traffic ≤ 300 B/s per peer per channel"
		unknown = GapUnknown
	)
	for _, tc := range []struct {
		name    string
		results []Result
		want    map[string]GapStatus
		// value is the expected measured value of one target, if set.
		valueOf string
		value   float64
	}{
		{
			name:    "every target met, GossipSub's p99 twice fabgossip's",
			results: []Result{meets(1), gossipsub(1, 100)},
			want:    all(GapMet),
			valueOf: vsGS, value: 0.5,
		},
		{
			name: "at the limits exactly is met",
			results: []Result{with(1, func(r *Result) {
				r.PFullPush, r.RMR, r.AWire, r.TFullOverFloor, r.TFullP99OverFloor, r.TFullP99Ms, r.IdleControlBytesPerSPerPeerPerChannel = 0.999, 0.10, 1.2, 1.3, 2, 60, 300
			}), gossipsub(1, 100)},
			want: all(GapMet),
		},
		{
			name: "Fabric-like figures miss five targets",
			results: []Result{with(1, func(r *Result) {
				r.PFullPush, r.RMR, r.AWire, r.TFullP99OverFloor, r.IdleControlBytesPerSPerPeerPerChannel = 0.65, 2.3, 3.27, 19, 2500
			}), gossipsub(1, 100)},
			want:    override(all(GapMet), pFull, GapNotMet, rmr, GapNotMet, aWire, GapNotMet, p99, GapNotMet, idle, GapNotMet),
			valueOf: pFull, value: 0.65,
		},
		{
			name:    "without GossipSub the comparison is not measured",
			results: []Result{meets(1)},
			want:    override(all(GapMet), vsGS, unknown),
		},
		{
			name:    "without a floor (loopback TCP) the ×floor targets are not measured",
			results: []Result{with(1, func(r *Result) { r.TFullOverFloor, r.TFullP99OverFloor, r.FloorMs = 0, 0, []float64{0} }), gossipsub(1, 100)},
			want:    override(all(GapMet), p50, unknown, p99, unknown),
		},
		{
			name:    "the worst seed decides",
			results: []Result{meets(1), with(2, func(r *Result) { r.Leaks = 3 }), meets(3), gossipsub(1, 100), gossipsub(2, 100), gossipsub(3, 100)},
			want:    override(all(GapMet), leaks, GapNotMet),
			valueOf: leaks, value: 3,
		},
		{
			name:    "GossipSub is compared seed by seed",
			results: []Result{meets(1), meets(2), gossipsub(1, 100), gossipsub(2, 60)},
			want:    override(all(GapMet), vsGS, GapNotMet),
			valueOf: vsGS, value: 50.0 / 60,
		},
		{
			name:    "a failed run is left out",
			results: []Result{meets(1), {System: SystemFabgossip, BlockSize: HeadlineBlockSize, Seed: 2, Error: "boom"}, gossipsub(1, 100)},
			want:    all(GapMet),
		},
		{
			name:    "other sizes and systems do not count",
			results: []Result{with(1, func(r *Result) { r.BlockSize = 16 << 10; r.Leaks = 9 }), {System: SystemFabricStock, BlockSize: HeadlineBlockSize, Seed: 1, Leaks: 9}},
			want:    all(unknown),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gaps := Gaps(tc.results, HeadlineBlockSize)
			if len(gaps) != len(Targets()) {
				t.Fatalf("%d gaps, want one per target (%d)", len(gaps), len(Targets()))
			}
			for _, g := range gaps {
				if want := tc.want[g.Target.Name]; g.Status != want {
					t.Errorf("%s: %s, want %s (%s)", g.Target.Name, g.Status, want, g)
				}
				if g.Target.Name == tc.valueOf && math.Abs(g.Value-tc.value) > 1e-9 {
					t.Errorf("%s: value %v, want %v", g.Target.Name, g.Value, tc.value)
				}
			}
		})
	}
}

func TestGapText(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  Gap
		want string
	}{
		{"met", Gap{Target: Targets()[1], Status: GapMet, Value: 0.04, Runs: 1}, "RMR ≤ 0.10: met, 0.04"},
		{"short", Gap{Target: Targets()[0], Status: GapNotMet, Value: 0.65, Runs: 1}, "P_full_push ≥ 0.999: not met, 0.650 (short by 0.349)"},
		{"over, worst of seeds", Gap{Target: Targets()[4], Status: GapNotMet, Value: 3.03, Runs: 3, Seed: 2},
			"T_full p99 ≤ 2 × floor: not met, 3.03 × floor (over by 1.03 × floor), worst of 3 seeds (seed 2)"},
		{"not measured", Gap{Target: Targets()[5], Status: GapUnknown, Reason: "GossipSub did not run"},
			"T_full p99 ≤ 0.6 × GossipSub's p99: not measured (GossipSub did not run)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.gap.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestShortReport: the default report is one row per system and size and the
// gap list; the per-seed tables and the notes are only in Markdown.
func TestShortReport(t *testing.T) {
	bound := meets(2)
	bound.CPUUtilisation, bound.CPUBound = 0.9, true
	rep := &Report{
		Command:  "fabgossip bench --test",
		Topology: TopologySummary{Scale: "S", Orgs: 5, PeersPerOrg: []int{10, 10, 10, 10, 10}, Channels: []ChanInfo{{Name: "ch0", Members: 50}}},
		Workload: Workload{BlockSizes: []int{16 << 10, HeadlineBlockSize}, Seeds: []uint64{1, 2}, Network: NetworkMock},
		Results: []Result{
			meets(1), bound, gossipsub(1, 100), gossipsub(2, 100),
			{System: SystemFabgossip, BlockSize: 16 << 10, Seed: 1, Error: "boom"},
		},
		Notes: []string{"a long note"},
	}
	s := rep.Short()
	for _, want := range []string{
		"Scale S (50 peers in 5 orgs, 1 channels)",
		"| system | size | runs | cov_final | P_full_push | T_full p50 / p99 (ms) | ×floor p50 / p99 | RMR | A_wire | idle B/s/peer/ch | leaks | CPU util |",
		"| fabgossip | 128 KiB | 2 | 1.0000 | 1.000 | 0 / 50 | 1.10 / 1.40 | 0.02 | 1.05 | 90 | 0 | 45% ⚠ 1 of 2 |",
		"| gossipsub | 128 KiB | 2 |",
		"| 600 |", // GossipSub's leaks, summed over seeds
		"| fabgossip | 16 KiB | 0 (+1 failed) | error: boom |",
		"Gap to target (fabgossip, 128 KiB blocks, BENCHMARK.md's \"must show\"): 8 of 8 met.",
		"- leaks = 0: met, 0, worst of 2 seeds",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("short report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "16 KiB blocks, BENCHMARK.md") {
		t.Errorf("short report has a gap list for 16 KiB although the run has the headline size:\n%s", s)
	}
	if strings.Contains(s, "a long note") || strings.Contains(s, "| seed |") {
		t.Errorf("short report has the verbose parts:\n%s", s)
	}
	if m := rep.Markdown(); !strings.Contains(m, "a long note") || !strings.Contains(m, "Gap to target") {
		t.Errorf("the whole report lacks the notes or the gap list:\n%s", m)
	}
}
