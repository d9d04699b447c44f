package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
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
	type key struct {
		sys  string
		size int
	}
	type agg struct {
		n, failed, leaks, bound                   int
		covPush, pFull, covFinal, p50, p99, floor spread
		rmr, aWire, idle, cpu                     spread
	}
	var order []key
	aggs := map[key]*agg{}
	for _, x := range r.Results {
		k := key{x.System, x.BlockSize}
		a := aggs[k]
		if a == nil {
			a = &agg{}
			aggs[k] = a
			order = append(order, k)
		}
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
