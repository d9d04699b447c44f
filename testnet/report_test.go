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
