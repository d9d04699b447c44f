package testnet

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Watching a run: deliveries polled from the peers, progress, the report.

// pollDeliveries reads every member peer's new deliveries of each channel:
// from its delivery log (the admin API's data=false), except for a restarted
// peer, whose log starts empty at each restart: its blocks are read from its
// ledger (data=true, served from its store beyond the in-memory window),
// with their delivery time when its current process delivered them.
func (r *run) pollDeliveries(ctx context.Context) {
	for k, ch := range r.channels {
		for i, p := range r.procs {
			if !slices.Contains(ch.Orgs, p.peer.Org) || p.exited() {
				continue
			}
			r.mu.Lock()
			from := r.next[k][i]
			r.mu.Unlock()
			fromLedger := i == r.victim && r.fromStore
			limit := 10000
			if fromLedger {
				limit = 1000
			}
			list, err := p.client.Blocks(ctx, ch.Name, from, limit, fromLedger)
			if err != nil {
				continue // the next poll retries; a dead peer is reported on r.exits
			}
			r.mu.Lock()
			for _, b := range list.Blocks {
				if b.Number == r.next[k][i] {
					r.delivered[k][i][b.Number] = sighting{at: b.DeliveredAt, hash: b.Hash}
					r.next[k][i]++
				}
			}
			r.mu.Unlock()
		}
	}
}

// complete reports whether every member peer delivered every published
// block of every channel.
func (r *run) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, ch := range r.channels {
		for i, p := range r.procs {
			if slices.Contains(ch.Orgs, p.peer.Org) && r.next[k][i] < uint64(r.o.Blocks) {
				return false
			}
		}
	}
	return true
}

func (r *run) printProgress(final bool) {
	r.mu.Lock()
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs", time.Since(r.start).Seconds())
	for k, ch := range r.channels {
		got, want := 0, 0
		for i, p := range r.procs {
			if slices.Contains(ch.Orgs, p.peer.Org) {
				got += int(min(r.next[k][i], uint64(r.o.Blocks)))
				want += r.o.Blocks
			}
		}
		fmt.Fprintf(&b, " | %s published %d/%d delivered %.1f%%", ch.Name, len(r.published[k]), r.o.Blocks, 100*float64(got)/float64(want))
	}
	r.mu.Unlock()
	switch {
	case r.o.Live && final:
		fmt.Fprintf(r.o.Out, "\r%-100s\n", b.String())
	case r.o.Live:
		fmt.Fprintf(r.o.Out, "\r%-100s", b.String())
	default:
		fmt.Fprintln(r.o.Out, b.String())
	}
}

// report computes the Report from the deliveries and every peer's metrics.
func (r *run) report(ctx context.Context) (*Report, error) {
	metrics := make([]peerMetrics, len(r.procs))
	for i, p := range r.procs {
		text, err := p.client.Metrics(ctx)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", p.peer.Name, err)
		}
		if metrics[i], err = parseMetrics(text); err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", p.peer.Name, err)
		}
		if i == r.victim {
			metrics[i].add(r.lostMetrics)
		}
	}
	rep := &Report{
		Command: r.o.Command,
		Topology: TopologyReport{
			Orgs: r.o.Orgs, PeersPerOrg: r.o.PeersPerOrg, External: r.o.External, Transport: r.transport(), WAN: r.wanText(),
			BlockSize: r.o.BlockSize, Blocks: r.o.Blocks, Rate: r.o.Rate, Channels: r.channels,
		},
		DurationSeconds: time.Since(r.start).Seconds(),
		Cores:           runtime.NumCPU(),
		Passed:          true,
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var deliveredBytes float64
	for k, ch := range r.channels {
		c := ChannelReport{Name: ch.Name, Published: len(r.published[k])}
		var received, bytes, accepted float64
		for i, p := range r.procs {
			m := metrics[i]
			if !slices.Contains(ch.Orgs, p.peer.Org) {
				if n := max(m.blocksReceived[ch.Name], m.accepted[ch.Name]); n > 0 || m.blockBytes[ch.Name] > 0 {
					c.Leaks += int(n)
					c.LeakedTo = append(c.LeakedTo, fmt.Sprintf("%s(%d)", p.peer.Name, int(n)))
				}
				continue
			}
			c.EligiblePeers++
			received += m.blocksReceived[ch.Name]
			bytes += m.blockBytes[ch.Name]
			accepted += m.accepted[ch.Name]
		}
		c.Expected = c.EligiblePeers * r.o.Blocks
		var latencies []time.Duration
		for n := range uint64(r.o.Blocks) {
			pub, ok := r.published[k][n]
			last := int64(0)
			all := ok
			for i, p := range r.procs {
				if !slices.Contains(ch.Orgs, p.peer.Org) {
					continue
				}
				d, got := r.delivered[k][i][n]
				if got && ok && d.hash != pub.hash {
					c.WrongHash++
					got = false
				}
				if !got {
					all = false
					if len(c.Missing) < 10 {
						c.Missing = append(c.Missing, fmt.Sprintf("%s/%d", p.peer.Name, n))
					}
					continue
				}
				c.Delivered++
				if i != r.victim {
					last = max(last, d.at)
				}
			}
			if all {
				latencies = append(latencies, time.Duration(last-pub.at))
			}
		}
		c.Coverage = float64(c.Delivered) / float64(c.Expected)
		c.LatencyP50Ms, c.LatencyP99Ms = Millis(percentile(latencies, 0.50)), Millis(percentile(latencies, 0.99))
		if f := r.floor(k); f > 0 && len(latencies) > 0 {
			c.FloorMs = float64(f) / float64(time.Millisecond)
			c.P50OverFloor, c.P99OverFloor = float64(c.LatencyP50Ms)/c.FloorMs, float64(c.LatencyP99Ms)/c.FloorMs
		}
		receivers := float64(c.EligiblePeers-1) * float64(c.Published)
		if receivers > 0 {
			c.Amplification = bytes / (receivers * float64(r.o.BlockSize))
			c.DuplicatesPerBlock = (received - accepted) / receivers
		}
		deliveredBytes += receivers * float64(r.o.BlockSize)
		if !c.OK() {
			rep.Passed = false
		}
		rep.Channels = append(rep.Channels, c)
	}
	for i, m := range metrics {
		rep.TotalBytesSent += uint64(m.bytesSent)
		rep.FramesDropped += uint64(m.framesDropped)
		rep.PeerCPUSeconds += m.cpuSeconds
		rep.Tree.Payloads += uint64(m.treePayloads)
		rep.Tree.IHaves += uint64(m.treeControl["ihave"])
		rep.Tree.Grafts += uint64(m.treeControl["graft"])
		rep.Tree.Prunes += uint64(m.treeControl["prune"])
		for ch, n := range m.accepted {
			if k := slices.IndexFunc(r.channels, func(c ChannelTopology) bool { return c.Name == ch }); k >= 0 && slices.Contains(r.channels[k].Orgs, r.procs[i].peer.Org) {
				rep.Tree.Accepted += uint64(n)
			}
		}
	}
	if rep.Tree.Accepted > 0 {
		rep.Tree.PayloadsPerAccepted = float64(rep.Tree.Payloads) / float64(rep.Tree.Accepted)
	}
	rep.Restarts = r.restartReports()
	rep.RestartProblems = r.restartProblems
	if len(r.restartProblems) > 0 {
		rep.Passed = false
	}
	if deliveredBytes > 0 {
		rep.OverallAmplification = float64(rep.TotalBytesSent) / deliveredBytes
	}
	return rep, nil
}

func (r *run) printAdminURLs() {
	fmt.Fprintf(r.o.Out, "\ntestnet: running until Ctrl-C; files in %s\n", r.dir)
	for _, p := range r.procs {
		ext := ""
		if p.peer.External {
			ext = " (external)"
		}
		fmt.Fprintf(r.o.Out, "  %-14s %s%s\n", p.peer.Name, p.info.AdminURL, ext)
	}
	if len(r.procs) > 0 {
		p := r.procs[0]
		fmt.Fprintf(r.o.Out, "talk to a peer:\n  fabgossip status --admin %s\n  fabgossip publish --admin %s --channel %s --data hello\n",
			p.info.AdminURL, p.info.AdminURL, r.channels[0].Name)
	}
}
