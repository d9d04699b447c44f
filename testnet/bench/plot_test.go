package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// svgSeries parses an SVG, failing the test if it is not well-formed XML,
// and returns the data-system of every series group in document order, and
// whether each is dashed (drawn from percentiles).
func svgSeries(t *testing.T, svg []byte) (systems []string, dashed []bool) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root, inSeries := "", false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Space + " " + e.Name.Local
			}
			attr := map[string]string{}
			for _, a := range e.Attr {
				attr[a.Name.Local] = a.Value
			}
			if e.Name.Local == "g" && attr["class"] == "series" {
				systems = append(systems, attr["data-system"])
				dashed = append(dashed, false)
				inSeries = true
			}
			if inSeries && e.Name.Local == "path" && attr["stroke-dasharray"] != "" {
				dashed[len(dashed)-1] = true
			}
		case xml.EndElement:
			if e.Name.Local == "g" {
				inSeries = false
			}
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg in the SVG namespace", root)
	}
	return systems, dashed
}

func plotReport() *Report {
	run := func(sys string, seed uint64, ms ...float64) Result {
		return Result{System: sys, BlockSize: HeadlineBlockSize, Seed: seed, Blocks: len(ms) + 1, BlocksFull: 1,
			TFullMs: ms, TFullP50Ms: ms[len(ms)/2], TFullP99Ms: ms[len(ms)-1], TFullMaxMs: ms[len(ms)-1], FloorMs: []float64{24, 31}}
	}
	return &Report{
		Topology: TopologySummary{Scale: "S", Orgs: 1, PeersPerOrg: []int{3}},
		Workload: Workload{BlockSizes: []int{HeadlineBlockSize}, Seeds: []uint64{1, 2}, Network: NetworkMock},
		Results: []Result{
			run(SystemFabgossip, 1, 30, 33, 40, 90), run(SystemFabricStock, 1, 45, 70, 3900),
			run(SystemGossipSub, 1, 28, 41, 150), run(SystemDirect, 1, 29, 30, 31),
			run(SystemFabgossip, 2, 31, 35, 38), // pooled with seed 1
			{System: SystemGossipSubNoSign, BlockSize: HeadlineBlockSize, Seed: 1, Error: "boom"},
		},
	}
}

func TestPlotSVGOneSeriesPerSystem(t *testing.T) {
	var b bytes.Buffer
	if err := plotReport().PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	systems, dashed := svgSeries(t, b.Bytes())
	if want := []string{SystemFabgossip, SystemFabricStock, SystemGossipSub, SystemDirect}; !slices.Equal(systems, want) {
		t.Errorf("series %v, want %v (one per system that ran, seeds pooled, failed runs left out)", systems, want)
	}
	if slices.Contains(dashed, true) {
		t.Errorf("dashed %v: a report with per-block values is drawn from them", dashed)
	}
	for _, want := range []string{`class="floor"`, "floor 24–31 ms", "T_full (ms, log scale)", ">1,000<"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestPlotSVGOldReport: a report saved before t_full_ms existed is drawn from
// its percentiles, one dashed series per system, one panel per size.
func TestPlotSVGOldReport(t *testing.T) {
	rep := plotReport()
	second := rep.Results[3]
	second.BlockSize = 16 << 10
	rep.Results = append(rep.Results, second)
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	for _, r := range old["results"].([]any) {
		delete(r.(map[string]any), "t_full_ms")
	}
	raw, _ = json.Marshal(old)
	back, err := ReadReport(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := back.PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	systems, dashed := svgSeries(t, b.Bytes())
	if want := []string{SystemFabgossip, SystemFabricStock, SystemGossipSub, SystemDirect, SystemDirect}; !slices.Equal(systems, want) {
		t.Errorf("series %v, want %v", systems, want)
	}
	if slices.Contains(dashed, false) {
		t.Errorf("dashed %v: every series of an old report is drawn from percentiles", dashed)
	}
	if !strings.Contains(b.String(), "16 KiB blocks") {
		t.Error("no panel for the second block size")
	}
}

func TestPlotSVGNothingToPlot(t *testing.T) {
	rep := &Report{Results: []Result{{System: SystemFabgossip, Error: "boom"}}}
	if err := rep.PlotSVG(io.Discard); err == nil {
		t.Error("a report without a successful run was plotted")
	}
}

// TestPlotSVGIncompleteBlocks: blocks that never reached every member count
// against the curve (it ends below 1), and a system with no complete block
// keeps its legend entry without a curve.
func TestPlotSVGIncompleteBlocks(t *testing.T) {
	rep := plotReport()
	rep.Results = append(rep.Results,
		Result{System: SystemFabgossip, BlockSize: HeadlineBlockSize, Seed: 3, Blocks: 10},
		Result{System: SystemGossipSubNoSign, BlockSize: HeadlineBlockSize, Seed: 2, Blocks: 10},
	)
	var b bytes.Buffer
	if err := rep.PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	systems, _ := svgSeries(t, b.Bytes())
	if !slices.Contains(systems, SystemGossipSubNoSign) {
		t.Errorf("series %v: the system with no complete block has no legend entry", systems)
	}
	// fabgossip: 7 complete blocks of 5 + 4 + 10 over three seeds.
	for _, want := range []string{"12 incomplete", "no block reached every member"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
