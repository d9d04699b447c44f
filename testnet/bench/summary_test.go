package bench

import (
	"bytes"
	"encoding/json"
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
