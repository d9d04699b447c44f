package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Plot geometry in SVG user units (pixels): one panel per block size, the
// legend to the right of the plot area.
const (
	plotWidth   = 880
	panelHeight = 330
	plotLeft    = 62  // room for the y labels
	plotRight   = 210 // room for the legend
	plotTop     = 44  // room for the panel title
	plotBottom  = 46  // room for the x labels and axis title
)

// systemColours keep a system's colour the same in every plot.
var systemColours = map[string]string{
	SystemFabgossip:       "#1f77b4",
	SystemFabgossipLocal:  "#17becf",
	SystemFabricStock:     "#ff7f0e",
	SystemGossipSub:       "#2ca02c",
	SystemGossipSubNoSign: "#9467bd",
	SystemDirect:          "#555555",
}

// cdfSeries is one system's T_full distribution at one block size, pooled
// over its successful seeds.
type cdfSeries struct {
	system string
	// ms is T_full(b) of every block that reached all of E(b), ascending;
	// blocks counts every block, those that did not too, so the curve ends
	// below 1 when some block never reached everyone.
	ms     []float64
	blocks int
	// fromPercentiles marks a series with a run from a report written
	// before Result.TFullMs: the curve is then the seeds' mean p50 and p99
	// and their largest max, at the mean fraction of complete blocks.
	fromPercentiles bool
	// runs counts the series' runs, fullRuns those with a complete block,
	// whose percentiles the sums add up.
	runs, fullRuns          int
	sumP50, sumP99, sumFull float64
	maxMs                   float64
}

// point is where the curve reaches fraction y at x ms.
type point struct{ x, y float64 }

func (s cdfSeries) points() []point {
	if s.fromPercentiles {
		if s.fullRuns == 0 {
			return nil
		}
		n, full := float64(s.fullRuns), s.sumFull/float64(s.runs)
		return []point{{s.sumP50 / n, 0.5 * full}, {s.sumP99 / n, 0.99 * full}, {s.maxMs, full}}
	}
	pts := make([]point, len(s.ms))
	for i, ms := range s.ms {
		pts[i] = point{ms, float64(i+1) / float64(s.blocks)}
	}
	return pts
}

// cdfPanel is one block size: its series and the range of channel floors.
type cdfPanel struct {
	size             int
	seeds            []uint64
	series           []cdfSeries
	floorLo, floorHi float64 // 0 when the run had no emulated latency
}

// cdfPanels groups the successful results by block size, then system, in
// report order.
func (r *Report) cdfPanels() []cdfPanel {
	var panels []cdfPanel
	for _, x := range r.Results {
		if x.Error != "" {
			continue
		}
		i := slices.IndexFunc(panels, func(p cdfPanel) bool { return p.size == x.BlockSize })
		if i < 0 {
			panels = append(panels, cdfPanel{size: x.BlockSize})
			i = len(panels) - 1
		}
		p := &panels[i]
		if !slices.Contains(p.seeds, x.Seed) {
			p.seeds = append(p.seeds, x.Seed)
		}
		for _, f := range x.FloorMs {
			if f > 0 {
				if p.floorLo == 0 || f < p.floorLo {
					p.floorLo = f
				}
				p.floorHi = max(p.floorHi, f)
			}
		}
		j := slices.IndexFunc(p.series, func(s cdfSeries) bool { return s.system == x.System })
		if j < 0 {
			p.series = append(p.series, cdfSeries{system: x.System})
			j = len(p.series) - 1
		}
		s := &p.series[j]
		s.blocks += x.Blocks
		s.ms = append(s.ms, x.TFullMs...)
		s.fromPercentiles = s.fromPercentiles || (len(x.TFullMs) == 0 && x.BlocksFull > 0)
		s.runs++
		s.sumFull += x.BlocksFull
		if x.BlocksFull > 0 {
			s.fullRuns++
			s.sumP50 += x.TFullP50Ms
			s.sumP99 += x.TFullP99Ms
			s.maxMs = max(s.maxMs, x.TFullMaxMs)
		}
	}
	for i := range panels {
		for j := range panels[i].series {
			slices.Sort(panels[i].series[j].ms)
		}
	}
	// A size at which no system completed a block has nothing to draw.
	return slices.DeleteFunc(panels, func(p cdfPanel) bool {
		return !slices.ContainsFunc(p.series, func(s cdfSeries) bool { return len(s.points()) > 0 })
	})
}

// PlotSVG writes the empirical CDF of per-block T_full of every system, one
// panel per block size, on a log time axis with the range of the channels'
// latency floors shaded: how far each system's blocks land from the floor,
// and how long its tail is. Seeds are pooled. A report written before
// per-block values were kept is drawn from its percentiles (p50, p99, max),
// dashed. It is plain SVG 1.1 with no scripts or external resources.
func (r *Report) PlotSVG(w io.Writer) error {
	panels := r.cdfPanels()
	if len(panels) == 0 {
		return fmt.Errorf("bench: plot: no successful run with a complete block")
	}
	var b bytes.Buffer
	height := panelHeight * len(panels)
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="#ffffff"/>
`, plotWidth, height, plotWidth, height)
	for i, p := range panels {
		r.plotPanel(&b, p, float64(i*panelHeight))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func (r *Report) plotPanel(b *bytes.Buffer, p cdfPanel, top float64) {
	x0, x1 := float64(plotLeft), float64(plotWidth-plotRight)
	y0, y1 := top+plotTop, top+panelHeight-plotBottom // y0 is fraction 1, y1 fraction 0
	lo, hi := math.Inf(1), 0.0
	for _, s := range p.series {
		for _, pt := range s.points() {
			lo, hi = math.Min(lo, pt.x), math.Max(hi, pt.x)
		}
	}
	if p.floorLo > 0 {
		lo, hi = math.Min(lo, p.floorLo), math.Max(hi, p.floorHi)
	}
	lo, hi = niceBelow(math.Max(lo, 0.01)), niceAbove(math.Max(hi, 0.01))
	if hi <= lo {
		hi = niceAbove(lo * 1.01)
	}
	x := func(ms float64) float64 {
		ms = math.Min(math.Max(ms, lo), hi)
		return x0 + (x1-x0)*math.Log(ms/lo)/math.Log(hi/lo)
	}
	y := func(f float64) float64 { return y1 - (y1-y0)*f }

	title := fmt.Sprintf("T_full per block, %s blocks: fraction of blocks that reached every member within t", sizeName(p.size))
	seeds := "seed " + uints(p.seeds)
	if len(p.seeds) > 1 {
		seeds = "seeds " + uints(p.seeds) + " pooled"
	}
	sub := fmt.Sprintf("scale %s, %s, %s", r.Topology.Scale, networkText(r.Workload.Network, r.Workload.EgressMbps, r.Workload.Loss), seeds)
	if slices.ContainsFunc(p.series, func(s cdfSeries) bool { return s.fromPercentiles }) {
		sub += "; dashed: p50, p99 and max only (an older report)"
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" font-size="14" font-weight="bold">%s</text>`+"\n", x0, top+18, esc(title))
	fmt.Fprintf(b, `<text x="%g" y="%g" fill="#555555">%s</text>`+"\n", x0, top+34, esc(sub))

	// The floor band, under everything else.
	if p.floorLo > 0 {
		fl, fh := x(p.floorLo), x(p.floorHi)
		fmt.Fprintf(b, `<rect class="floor" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e8e8e8"/>`+"\n", fl, y0, math.Max(fh-fl, 1.5), y1-y0)
		label := fmt.Sprintf("floor %.0f–%.0f ms", p.floorLo, p.floorHi)
		if math.Round(p.floorLo) == math.Round(p.floorHi) {
			label = fmt.Sprintf("floor %.0f ms", p.floorLo)
		}
		// Along the band, in its upper half, where the curves rarely are.
		fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="end" fill="#555555" font-size="11">%s</text>`+"\n",
			(fl+math.Max(fh, fl+1.5))/2+4, y0+6, esc(label))
	}

	// Grid and axes.
	for _, t := range logTicks(lo, hi) {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d0d0d0" stroke-width="0.8"/>`+"\n", x(t), y0, x(t), y1)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t), y1+16, msName(t))
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d0d0d0" stroke-width="0.8"/>`+"\n", x0, y(f), x1, y(f))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n", x0-6, y(f)+4, f)
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999999" stroke-dasharray="3 3"/>`+"\n", x0, y(0.99), x1, y(0.99))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#666666" font-size="11">p99</text>`+"\n", x1+4, y(0.99)+4)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333333"/>`+"\n", x0, y0, x1-x0, y1-y0)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">T_full (ms, log scale)</text>`+"\n", (x0+x1)/2, y1+34)
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle">fraction of blocks</text>`+"\n", x0-44, (y0+y1)/2)

	// One series per system, then its legend entry.
	for i, s := range p.series {
		colour := systemColours[s.system]
		if colour == "" {
			colour = "#000000"
		}
		pts := s.points()
		var d strings.Builder
		dash := ""
		switch {
		case len(pts) == 0:
			// Nothing to draw: the legend says so.
		case s.fromPercentiles:
			// Only three points are known: join them, and mark them.
			fmt.Fprintf(&d, "M%.1f %.1f", x(pts[0].x), y(pts[0].y))
			for _, pt := range pts[1:] {
				fmt.Fprintf(&d, " L%.1f %.1f", x(pt.x), y(pt.y))
			}
			dash = ` stroke-dasharray="6 4"`
		default:
			// The empirical CDF's steps, held at its last level to the
			// right edge.
			fmt.Fprintf(&d, "M%.1f %.1f", x(pts[0].x), y(0))
			for _, pt := range pts {
				fmt.Fprintf(&d, " H%.1f V%.1f", x(pt.x), y(pt.y))
			}
			fmt.Fprintf(&d, " H%.1f", x1)
		}
		fmt.Fprintf(b, `<g class="series" data-system="%s">`+"\n", esc(s.system))
		if d.Len() > 0 {
			fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", d.String(), colour, dash)
		}
		if s.fromPercentiles {
			for _, pt := range pts {
				fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(pt.x), y(pt.y), colour)
			}
		}
		ly := y0 + 8 + float64(i)*34
		lx := x1 + 34
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"%s/>`+"\n", lx, ly, lx+22, ly, colour, dash)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", lx+28, ly+4, esc(s.system))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#555555" font-size="11">%s</text>`+"\n", lx+28, ly+18, esc(s.legend()))
		b.WriteString("</g>\n")
	}
}

// legend is the series' p50 and p99, and its incomplete blocks if any.
func (s cdfSeries) legend() string {
	if len(s.points()) == 0 {
		return "no block reached every member"
	}
	p50, p99 := quantile(s.ms, 0.5), quantile(s.ms, 0.99)
	if s.fromPercentiles {
		p50, p99 = s.sumP50/float64(s.fullRuns), s.sumP99/float64(s.fullRuns)
	}
	t := fmt.Sprintf("p50 %s, p99 %s ms", msName(p50), msName(p99))
	if !s.fromPercentiles && len(s.ms) < s.blocks {
		t += fmt.Sprintf(", %d incomplete", s.blocks-len(s.ms))
	}
	return t
}

// niceBelow and niceAbove round to the 1-2-5 sequence, so the axis ends on
// a labelled tick.
func niceBelow(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*e <= v*1.0000001 {
			return m * e
		}
	}
	return e
}

func niceAbove(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v*0.9999999 {
			return m * e
		}
	}
	return 10 * e
}

// logTicks are the values from lo to hi to label: 1, 2 and 5 of every
// decade, more of them when the axis spans few decades.
func logTicks(lo, hi float64) []float64 {
	mults := []float64{1, 2, 5}
	switch decades := math.Log10(hi / lo); {
	case decades <= 1.5:
		mults = []float64{1, 1.5, 2, 3, 4, 5, 7}
	case decades <= 3:
		mults = []float64{1, 2, 3, 5}
	}
	var ts []float64
	for e := math.Pow(10, math.Floor(math.Log10(lo))); e <= hi; e *= 10 {
		for _, m := range mults {
			if t := m * e; t >= lo*0.9999999 && t <= hi*1.0000001 {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// msName prints milliseconds the way the axis needs: 0.5, 20, 1,000.
func msName(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.0f,%03.0f", math.Floor(ms/1000), math.Mod(ms, 1000))
	case ms >= 10:
		return fmt.Sprintf("%.0f", ms)
	}
	return fmt.Sprintf("%.2g", ms)
}

func uints(xs []uint64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
