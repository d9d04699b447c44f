package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ReadReport decodes a report written as JSON (fabgossip bench --json), so
// that a long run can be rendered again without running it again.
func ReadReport(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("bench: read report: %w", err)
	}
	if len(rep.Results) == 0 || len(rep.Topology.PeersPerOrg) == 0 {
		return nil, fmt.Errorf("bench: read report: no results or no topology")
	}
	return &rep, nil
}

// spread is the mean of a metric over seeds with its range.
type spread struct{ sum, lo, hi float64 }

func (s *spread) add(x float64, first bool) {
	if first {
		s.lo, s.hi = x, x
	}
	s.sum += x
	s.lo, s.hi = math.Min(s.lo, x), math.Max(s.hi, x)
}

func (s spread) text(n int, format string) string {
	mean := fmt.Sprintf(format, s.sum/float64(n))
	if n == 1 || fmt.Sprintf(format, s.lo) == fmt.Sprintf(format, s.hi) {
		return mean
	}
	return fmt.Sprintf("%s ("+format+"–"+format+")", mean, s.lo, s.hi)
}

// Summary renders, for a report with more than one seed, one row per system
// and block size: each metric's mean over the seeds with its range. Failed
// runs are left out and counted. It returns "" for a single-seed report.
func (r *Report) Summary() string {
	if len(r.Workload.Seeds) < 2 {
		return ""
	}
	type agg struct {
		n, failed, leaks, bound                   int
		covPush, pFull, covFinal, p50, p99, floor spread
		rmr, aWire, idle, cpu                     spread
	}
	order, aggs := groupResults(r.Results, func() *agg { return &agg{} })
	for _, x := range r.Results {
		a := aggs[key{x.System, x.BlockSize}]
		if x.Error != "" {
			a.failed++
			continue
		}
		first := a.n == 0
		a.n++
		a.covPush.add(x.CovPush, first)
		a.pFull.add(x.PFullPush, first)
		a.covFinal.add(x.CovFinal, first)
		a.p50.add(x.TFullP50Ms, first)
		a.p99.add(x.TFullP99Ms, first)
		a.floor.add(x.TFullP99OverFloor, first)
		a.rmr.add(x.RMR, first)
		a.aWire.add(x.AWire, first)
		a.idle.add(x.IdleControlBytesPerSPerPeerPerChannel, first)
		a.cpu.add(100*x.CPUUtilisation, first)
		a.leaks += int(x.Leaks)
		if x.CPUBound {
			a.bound++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Mean over seeds %v (range in brackets):\n\n", r.Workload.Seeds)
	b.WriteString("| system | size | runs | cov_push | P_full_push | cov_final | T_full p50 (ms) | T_full p99 (ms) | p99 ×floor | RMR | A_wire | idle B/s/peer/ch | leaks (all seeds) | CPU util |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range order {
		a := aggs[k]
		runs := fmt.Sprintf("%d", a.n)
		if a.failed > 0 {
			runs += fmt.Sprintf(" (+%d failed)", a.failed)
		}
		if a.n == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s |||||||||||\n", k.sys, sizeName(k.size), runs)
			continue
		}
		p99floor := a.floor.text(a.n, "%.1f")
		if a.floor.hi == 0 {
			p99floor = "n/a"
		}
		cpu := a.cpu.text(a.n, "%.0f") + "%"
		if a.bound > 0 {
			cpu += fmt.Sprintf(" ⚠ %d of %d", a.bound, a.n)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			k.sys, sizeName(k.size), runs, a.covPush.text(a.n, "%.4f"), a.pFull.text(a.n, "%.3f"), a.covFinal.text(a.n, "%.4f"),
			a.p50.text(a.n, "%.0f"), a.p99.text(a.n, "%.0f"), p99floor, a.rmr.text(a.n, "%.2f"), a.aWire.text(a.n, "%.2f"),
			a.idle.text(a.n, "%.0f"), a.leaks, cpu)
	}
	b.WriteString("\n")
	return b.String()
}

// HeadlineBlockSize is the block size BENCHMARK.md's targets are stated for.
const HeadlineBlockSize = 128 << 10

// Target is one of BENCHMARK.md's "must show" targets for fabgossip.
type Target struct {
	// Name is the target as BENCHMARK.md writes it, e.g. "RMR ≤ 0.10".
	Name string
	// Limit is the bound; AtLeast says whether a value must reach it (≥)
	// or stay within it (≤).
	Limit   float64
	AtLeast bool
	// Format prints a value of the metric, Unit follows it.
	Format, Unit string
	// value measures one fabgossip run; gossipsub is the GossipSub run of
	// the same size and seed, nil if there was none. A non-empty reason
	// says why the run cannot be measured against the target.
	value func(x, gossipsub *Result) (v float64, reason string)
}

func (t Target) met(v float64) bool {
	if t.AtLeast {
		return v >= t.Limit
	}
	return v <= t.Limit
}

// worse reports whether a is further from t than b.
func (t Target) worse(a, b float64) bool {
	if t.AtLeast {
		return a < b
	}
	return a > b
}

// Targets are BENCHMARK.md's "must show" column, in its order.
func Targets() []Target {
	field := func(f func(*Result) float64) func(x, _ *Result) (float64, string) {
		return func(x, _ *Result) (float64, string) { return f(x), "" }
	}
	overFloor := func(f func(*Result) float64) func(x, _ *Result) (float64, string) {
		return func(x, _ *Result) (float64, string) {
			if f(x) == 0 {
				return 0, "no latency floor (no emulated latency)"
			}
			return f(x), ""
		}
	}
	return []Target{
		{Name: "P_full_push ≥ 0.999", Limit: 0.999, AtLeast: true, Format: "%.3f", value: field(func(x *Result) float64 { return x.PFullPush })},
		{Name: "RMR ≤ 0.10", Limit: 0.10, Format: "%.2f", value: field(func(x *Result) float64 { return x.RMR })},
		{Name: "A_wire ≤ 1.2", Limit: 1.2, Format: "%.2f", value: field(func(x *Result) float64 { return x.AWire })},
		{Name: "T_full p50 ≤ 1.3 × floor", Limit: 1.3, Format: "%.2f", Unit: " × floor", value: overFloor(func(x *Result) float64 { return x.TFullOverFloor })},
		{Name: "T_full p99 ≤ 2 × floor", Limit: 2, Format: "%.2f", Unit: " × floor", value: overFloor(func(x *Result) float64 { return x.TFullP99OverFloor })},
		{Name: "T_full p99 ≤ 0.6 × GossipSub's p99", Limit: 0.6, Format: "%.2f", Unit: " × GossipSub's p99", value: func(x, gs *Result) (float64, string) {
			if gs == nil || gs.TFullP99Ms == 0 {
				return 0, "GossipSub did not run"
			}
			return x.TFullP99Ms / gs.TFullP99Ms, ""
		}},
		{Name: "leaks = 0", Limit: 0, Format: "%.0f", value: field(func(x *Result) float64 { return float64(x.Leaks) })},
		{Name: "idle control traffic ≤ 300 B/s per peer per channel", Limit: 300, Format: "%.0f", Unit: " B/s", value: field(func(x *Result) float64 { return x.IdleControlBytesPerSPerPeerPerChannel })},
	}
}

// GapStatus says where a run stands against a target.
type GapStatus string

// The statuses of a Gap.
const (
	GapMet      GapStatus = "met"
	GapNotMet   GapStatus = "not met"
	GapUnknown  GapStatus = "not measured"
	gapNoResult           = "no successful fabgossip run"
)

// Gap is fabgossip's distance to one target at one block size: the worst of
// its seeds, so a target counts as met only if every seed met it.
type Gap struct {
	Target    Target
	BlockSize int
	Status    GapStatus
	// Value is the worst seed's value; Seed is that seed, Runs the number
	// of runs measured.
	Value float64
	Seed  uint64
	Runs  int
	// Reason says why the target is not measured.
	Reason string
}

// Gaps measures fabgossip against every target at size, over the seeds whose
// fabgossip run succeeded and can be measured against the target (the
// GossipSub comparison needs GossipSub's run of the same seed). Failed runs
// are left out (Check reports them); a target no run measures is
// GapUnknown.
func Gaps(results []Result, size int) []Gap {
	gossipsub := map[uint64]*Result{}
	var runs []*Result
	for i := range results {
		x := &results[i]
		if x.BlockSize != size || x.Error != "" {
			continue
		}
		switch x.System {
		case SystemGossipSub:
			gossipsub[x.Seed] = x
		case SystemFabgossip:
			runs = append(runs, x)
		}
	}
	var gaps []Gap
	for _, t := range Targets() {
		g := Gap{Target: t, BlockSize: size, Status: GapUnknown, Reason: gapNoResult}
		for _, x := range runs {
			v, reason := t.value(x, gossipsub[x.Seed])
			if reason != "" {
				if g.Runs == 0 {
					g.Reason = reason
				}
				continue
			}
			if g.Runs == 0 || t.worse(v, g.Value) {
				g.Value, g.Seed = v, x.Seed
			}
			g.Runs++
			g.Reason = ""
			g.Status = GapMet
			if !t.met(g.Value) {
				g.Status = GapNotMet
			}
		}
		gaps = append(gaps, g)
	}
	return gaps
}

// String is the gap as a list item: the target, met or not, the measured
// value, and by how much it misses.
func (g Gap) String() string {
	if g.Status == GapUnknown {
		return fmt.Sprintf("%s: %s (%s)", g.Target.Name, g.Status, g.Reason)
	}
	t := g.Target
	s := fmt.Sprintf("%s: %s, "+t.Format+"%s", t.Name, g.Status, g.Value, t.Unit)
	if g.Status == GapNotMet {
		by := "over"
		if t.AtLeast {
			by = "short"
		}
		s += fmt.Sprintf(" (%s by "+t.Format+"%s)", by, math.Abs(g.Value-t.Limit), t.Unit)
	}
	if g.Runs > 1 {
		s += fmt.Sprintf(", worst of %d seeds (seed %d)", g.Runs, g.Seed)
	}
	return s
}

// gapSizes are the block sizes the gap list covers: the headline size if the
// run has it, else every size it ran.
func (r *Report) gapSizes() []int {
	if slices.Contains(r.Workload.BlockSizes, HeadlineBlockSize) {
		return []int{HeadlineBlockSize}
	}
	var sizes []int
	for _, x := range r.Results {
		if !slices.Contains(sizes, x.BlockSize) {
			sizes = append(sizes, x.BlockSize)
		}
	}
	return sizes
}

// Short renders what fabgossip bench prints by default: a line of
// conditions, one row per system and block size (means over the seeds,
// leaks summed), and fabgossip's gap to each of BENCHMARK.md's targets.
// Markdown adds the per-seed tables and the notes.
func (r *Report) Short() string {
	var b strings.Builder
	t := r.Topology
	peers := 0
	for _, n := range t.PeersPerOrg {
		peers += n
	}
	fmt.Fprintf(&b, "Scale %s (%d peers in %d orgs, %d channels), %s; %d blocks per channel at %.3g/s; seeds %v; %d cores, load %s → %s.\n\n",
		t.Scale, peers, t.Orgs, len(t.Channels), networkText(r.Workload.Network, r.Workload.EgressMbps, r.Workload.Loss),
		r.Workload.BlocksPerChan, r.Workload.RatePerChan, r.Workload.Seeds, r.Machine.Cores, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd)
	b.WriteString(r.shortTable())
	b.WriteString("\n")
	b.WriteString(r.lossMarkdown())
	b.WriteString(r.gapText())
	return b.String()
}

func (r *Report) shortTable() string {
	type agg struct {
		n, failed, bound, leaks                                           int
		err                                                               string
		covFinal, pFull, p50, p99, x50, x99, rmr, aWire, idle, cpuPercent float64
	}
	order, aggs := groupResults(r.Results, func() *agg { return &agg{} })
	for _, x := range r.Results {
		a := aggs[key{x.System, x.BlockSize}]
		if x.Error != "" {
			a.failed++
			a.err = x.Error
			continue
		}
		a.n++
		a.covFinal += x.CovFinal
		a.pFull += x.PFullPush
		a.p50 += x.TFullP50Ms
		a.p99 += x.TFullP99Ms
		a.x50 += x.TFullOverFloor
		a.x99 += x.TFullP99OverFloor
		a.rmr += x.RMR
		a.aWire += x.AWire
		a.idle += x.IdleControlBytesPerSPerPeerPerChannel
		a.cpuPercent += 100 * x.CPUUtilisation
		a.leaks += int(x.Leaks)
		if x.CPUBound {
			a.bound++
		}
	}
	var b strings.Builder
	b.WriteString("| system | size | runs | cov_final | P_full_push | T_full p50 / p99 (ms) | ×floor p50 / p99 | RMR | A_wire | idle B/s/peer/ch | leaks | CPU util |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range order {
		a := aggs[k]
		runs := fmt.Sprintf("%d", a.n)
		if a.failed > 0 {
			runs += fmt.Sprintf(" (+%d failed)", a.failed)
		}
		if a.n == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | error: %s |||||||||\n", k.sys, sizeName(k.size), runs, a.err)
			continue
		}
		n := float64(a.n)
		floor := "n/a"
		if a.x50 > 0 {
			floor = fmt.Sprintf("%.2f / %.2f", a.x50/n, a.x99/n)
		}
		cpu := fmt.Sprintf("%.0f%%", a.cpuPercent/n)
		if a.bound > 0 {
			cpu += " ⚠"
			if a.n > 1 {
				cpu += fmt.Sprintf(" %d of %d", a.bound, a.n)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.4f | %.3f | %.0f / %.0f | %s | %.2f | %.2f | %.0f | %d | %s |\n",
			k.sys, sizeName(k.size), runs, a.covFinal/n, a.pFull/n, a.p50/n, a.p99/n, floor,
			a.rmr/n, a.aWire/n, a.idle/n, a.leaks, cpu)
	}
	return b.String()
}

// gapText is the gap list of Short: one item per target and gap size.
func (r *Report) gapText() string {
	var b strings.Builder
	for _, size := range r.gapSizes() {
		gaps := Gaps(r.Results, size)
		met, none := 0, 0
		for _, g := range gaps {
			if g.Status == GapMet {
				met++
			}
			if g.Reason == gapNoResult {
				none++
			}
		}
		if none == len(gaps) {
			fmt.Fprintf(&b, "Gap to target (fabgossip, %s blocks): not measured, %s.\n\n", sizeName(size), gapNoResult)
			continue
		}
		fmt.Fprintf(&b, "Gap to target (fabgossip, %s blocks, BENCHMARK.md's \"must show\"): %d of %d met.\n\n", sizeName(size), met, len(gaps))
		for _, g := range gaps {
			fmt.Fprintf(&b, "- %s\n", g)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// key names one row of a seed summary: a system and a block size.
type key struct {
	sys  string
	size int
}

// groupResults returns the (system, size) rows of results in the order they
// first appear, each with a fresh aggregate made by newAgg.
func groupResults[A any](results []Result, newAgg func() A) ([]key, map[key]A) {
	var order []key
	aggs := map[key]A{}
	for _, x := range results {
		k := key{x.System, x.BlockSize}
		if _, ok := aggs[k]; !ok {
			aggs[k] = newAgg()
			order = append(order, k)
		}
	}
	return order, aggs
}
