package testnet

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportJSONWithoutLatency: a run in which no block reached every
// eligible peer has no latency, and its report is still written, with null
// latencies, and read back as NaN.
func TestReportJSONWithoutLatency(t *testing.T) {
	nan := Millis(math.NaN())
	r := &Report{Channels: []ChannelReport{{Name: "ch", LatencyP50Ms: nan, LatencyP99Ms: nan}, {Name: "ok", LatencyP50Ms: 12.5, LatencyP99Ms: 40}}}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatalf("a report without latency is not written: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"latency_p50_ms": null`) {
		t.Errorf("no null latency in %s", data)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Channels[0].LatencyP99Ms)) || back.Channels[1].LatencyP99Ms != 40 {
		t.Errorf("read back %+v", back.Channels)
	}
}

// TestTreeMetricsParsed: the report's tree figures come from each peer's
// tree counters, and the table prints them.
func TestTreeMetricsParsed(t *testing.T) {
	m, err := parseMetrics([]byte(`# TYPE fabgossip_tree_payloads_sent_total counter
fabgossip_tree_payloads_sent_total 42
# TYPE fabgossip_tree_control_sent_total counter
fabgossip_tree_control_sent_total{kind="ihave"} 7
fabgossip_tree_control_sent_total{kind="graft"} 2
fabgossip_tree_control_sent_total{kind="prune"} 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.treePayloads != 42 || m.treeControl["ihave"] != 7 || m.treeControl["graft"] != 2 || m.treeControl["prune"] != 3 {
		t.Fatalf("parsed %v payloads, control %v", m.treePayloads, m.treeControl)
	}
	var b strings.Builder
	r := &Report{Tree: TreeReport{Payloads: 42, Accepted: 40, PayloadsPerAccepted: 1.05, IHaves: 7, Grafts: 2, Prunes: 3}}
	r.WriteTable(&b)
	if !strings.Contains(b.String(), "dissemination tree: 42 blocks pushed along it for 40 accepted (1.05 per block") {
		t.Errorf("no tree line in:\n%s", b.String())
	}
}
