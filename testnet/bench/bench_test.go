package bench

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// tinyOptions is a two-org network of three peers each (two external): ch0
// has both orgs, ch1 only org0, so org1's last peer is ch1's curious
// non-member and an outsider host plays the part for ch0.
func tinyOptions(systems ...string) Options {
	topo := makeTopology(2, 3, [][]int{{0, 1}, {0}})
	return Options{
		Scale:         ScaleQuick,
		BlockSizes:    []int{4 << 10},
		Blocks:        5,
		Rate:          10,
		Seeds:         []uint64{7},
		Systems:       systems,
		Idle:          300 * time.Millisecond,
		Settle:        10 * time.Second,
		WarmupTimeout: 30 * time.Second,
		topology:      &topo,
	}
}

func runTiny(t *testing.T, system string) Result {
	t.Helper()
	rep, err := Run(context.Background(), tinyOptions(system), testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("got %d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	if r.Error != "" {
		t.Fatalf("%s failed: %s", system, r.Error)
	}
	// Structure, not timing: every block was published and counted against
	// every member but the publisher, and the fractions are fractions.
	if r.Blocks != 10 || r.Pairs != 5*5+5*2 {
		t.Errorf("blocks %d pairs %d, want 10 and 35", r.Blocks, r.Pairs)
	}
	for name, v := range map[string]float64{
		"cov_push": r.CovPush, "p_full_push": r.PFullPush, "p_full_push_per_org": r.PFullPushPerOrg,
		"cov_final": r.CovFinal, "blocks_full": r.BlocksFull, "cpu_utilisation": r.CPUUtilisation,
	} {
		if v < 0 || v > 1 {
			t.Errorf("%s = %v, want within [0, 1]", name, v)
		}
	}
	if r.AWire <= 0 || r.PublisherEgressBytesPerBlock <= 0 {
		t.Errorf("a_wire %v, publisher egress %v: want bytes counted", r.AWire, r.PublisherEgressBytesPerBlock)
	}
	// The per-block T_full behind the percentiles: one value per complete
	// block, ascending, ending at the max.
	if full := int(r.BlocksFull*float64(r.Blocks) + 0.5); len(r.TFullMs) != full || !slices.IsSorted(r.TFullMs) ||
		(full > 0 && math.Abs(r.TFullMs[full-1]-r.TFullMaxMs) > 0.01) {
		t.Errorf("t_full_ms %v: want %d ascending values ending at max %v", r.TFullMs, full, r.TFullMaxMs)
	}
	if len(r.FloorMs) != 2 {
		t.Errorf("floors %v, want one per channel", r.FloorMs)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"cov_push", "p_full_push", "cov_final", "t_full_p50_ms", "t_full_p99_ms", "t_full_max_ms",
		"t_full_ms", "t_full_over_floor", "fairness_ms", "rmr", "a_wire", "duplicates_per_delivery", "publisher_egress_bytes_per_block",
		"idle_control_bytes_per_s_per_peer_per_channel", "leaks", "cpu_s_per_delivered_mb", "peak_heap_mb", "cpu_utilisation",
		"topology", "seed", "machine", "command"} {
		if !strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("JSON lacks %q", key)
		}
	}
	if err := rep.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if md := rep.Markdown(); !strings.Contains(md, "| "+system+" |") {
		t.Errorf("markdown has no row for %s:\n%s", system, md)
	}
	return r
}

func TestFabgossipDeliversEverythingWithoutLeaks(t *testing.T) {
	r := runTiny(t, SystemFabgossip)
	if r.Leaks != 0 {
		t.Errorf("leaks = %d, want 0", r.Leaks)
	}
	if r.CovFinal != 1 {
		t.Errorf("cov_final = %v, want 1", r.CovFinal)
	}
}

func TestLocalPresetDeliversEverythingWithoutLeaks(t *testing.T) {
	r := runTiny(t, SystemFabgossipLocal)
	if r.Leaks != 0 || r.CovFinal != 1 {
		t.Errorf("leaks = %d, cov_final = %v, want 0 and 1", r.Leaks, r.CovFinal)
	}
}

func TestCheckFlagsFabgossipLeaksButNotGossipSubs(t *testing.T) {
	rep := &Report{Results: []Result{
		{System: SystemGossipSub, Leaks: 30, CovFinal: 1},
		{System: SystemFabgossip, Leaks: 0, CovFinal: 1},
	}}
	if err := rep.Check(); err != nil {
		t.Errorf("Check = %v, want nil: GossipSub's leaks are its known behaviour", err)
	}
	rep.Results = append(rep.Results, Result{System: SystemFabricStock, Leaks: 1, CovFinal: 1}, Result{System: SystemFabgossip, CovFinal: 0.99})
	if err := rep.Check(); err == nil || !strings.Contains(err.Error(), "1 leaks") || !strings.Contains(err.Error(), "cov_final") {
		t.Errorf("Check = %v, want the fabric-stock leak and the fabgossip coverage", err)
	}
}

func TestFabricStockDeliversEverythingWithoutLeaks(t *testing.T) {
	r := runTiny(t, SystemFabricStock)
	if r.Leaks != 0 || r.CovFinal != 1 {
		t.Errorf("leaks = %d, cov_final = %v, want 0 and 1", r.Leaks, r.CovFinal)
	}
}

// GossipSub has no access control: a non-member that subscribes to the
// topic receives the channel's blocks. The benchmark must see that.
func TestGossipSubLeaksToCuriousSubscriber(t *testing.T) {
	r := runTiny(t, SystemGossipSub)
	if r.Leaks == 0 {
		t.Error("leaks = 0: the curious subscribers received nothing, so the leak probe is blind")
	}
	if r.RMR < 0 {
		t.Errorf("rmr = %v, want ≥ 0", r.RMR)
	}
}

func TestDirectIsOneCopyPerMember(t *testing.T) {
	r := runTiny(t, SystemDirect)
	if r.Leaks != 0 || r.CovFinal != 1 || r.CovPush != 1 {
		t.Errorf("leaks %d cov_final %v cov_push %v, want 0, 1, 1", r.Leaks, r.CovFinal, r.CovPush)
	}
	if r.RMR != 0 || r.DuplicatesPerDelivery != 0 {
		t.Errorf("rmr %v duplicates %v, want 0: every member gets exactly one copy", r.RMR, r.DuplicatesPerDelivery)
	}
}

func TestFloorCrossesOrgsOnlyBetweenExternalPeers(t *testing.T) {
	// org0 = peers 0 (external), 1, 2; org1 = peers 3 (external), 4, 5.
	l, err := newLayout(makeTopology(2, 3, [][]int{{0, 1}}))
	if err != nil {
		t.Fatal(err)
	}
	l.external = []bool{true, false, false, true, false, false}
	lat := shape.NewZeroLatencies(7)
	for i := range 7 {
		for j := i + 1; j < 7; j++ {
			d := 25 * time.Millisecond
			if j < 6 && l.org[i] == l.org[j] {
				d = 2 * time.Millisecond
			}
			lat.Set(i, j, d)
		}
	}
	// The door into org1 is peer 3: 25 ms, then 2 ms to its org mates.
	if got := l.floor(lat, 0, true); got != 27*time.Millisecond {
		t.Errorf("fabgossip floor = %v, want 27ms", got)
	}
	// With any member as a relay, every peer of org1 is one 25 ms hop away.
	if got := l.floor(lat, 0, false); got != 25*time.Millisecond {
		t.Errorf("member floor = %v, want 25ms", got)
	}
}

func TestPeekMessage(t *testing.T) {
	env := func(m *wire.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name     string
		payload  []byte
		wantKind int
		wantKey  string
	}{
		{"block", env(&wire.Message{Content: &wire.Message_Block{Block: &wire.Block{Channel: "ch1", Number: 9, Data: []byte("x")}}}), kindBlock, "ch1"},
		{"stateinfo", env(&wire.Message{Content: &wire.Message_StateInfo{StateInfo: &wire.StateInfo{PeerId: []byte("p"), ChannelMac: []byte("mac"), LedgerHeight: 3}}}), kindStateInfo, "mac"},
		{"alive", env(&wire.Message{Content: &wire.Message_Alive{Alive: &wire.Alive{Sequence: 1}}}), kindOther, ""},
		{"garbage", []byte{0xff, 0xff, 0xff}, kindOther, ""},
		{"empty", nil, kindOther, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if k, key := peekMessage(c.payload); k != c.wantKind || key != c.wantKey {
				t.Errorf("peekMessage = %d %q, want %d %q", k, key, c.wantKind, c.wantKey)
			}
		})
	}
}

func TestOptionsRejectUnknownSystemAndScale(t *testing.T) {
	if _, err := (Options{Scale: "XL"}).withDefaults(); err == nil {
		t.Error("scale XL accepted")
	}
	if _, err := (Options{Scale: ScaleS, Systems: []string{"floodsub"}}).withDefaults(); err == nil {
		t.Error("system floodsub accepted")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
