package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Report is the outcome of a process testnet: per channel, whether every
// eligible peer got every block, whether any block reached a peer outside
// the channel, how fast and at what cost.
type Report struct {
	Command  []string        `json:"command"`
	Topology TopologyReport  `json:"topology"`
	Channels []ChannelReport `json:"channels"`
	// TotalBytesSent is every fabgossip frame byte all peers sent (push,
	// pull, hello; blocks, StateInfo and alive), and OverallAmplification
	// that divided by the block data delivered to peers other than the
	// publishers.
	TotalBytesSent       uint64  `json:"total_bytes_sent"`
	OverallAmplification float64 `json:"overall_amplification"`
	// FramesDropped is the push frames the WAN profile's loss dropped, over
	// all peers.
	FramesDropped uint64 `json:"frames_dropped,omitempty"`
	// Tree is what the dissemination tree did, over all peers.
	Tree TreeReport `json:"tree"`
	// DurationSeconds is the run's wall time, from generating the network
	// to the report.
	DurationSeconds float64 `json:"duration_seconds"`
	// PeerCPUSeconds is the CPU time every peer process used (its
	// process_cpu_seconds_total), Cores the machine's: above 70% of the
	// cores over the run, latencies measure the scheduler, not the network.
	PeerCPUSeconds float64 `json:"peer_cpu_seconds"`
	Cores          int     `json:"cores"`
	// Restarts are the kills and restarts of the restart scenario, and
	// RestartProblems what the harness found wrong with them (a store that
	// lost delivered blocks, a block delivered twice or skipped across a
	// restart); any problem fails the run.
	Restarts        []RestartReport `json:"restarts,omitempty"`
	RestartProblems []string        `json:"restart_problems,omitempty"`
	Passed          bool            `json:"passed"`
}

// TreeReport sums the dissemination tree's counters over every peer: the
// blocks pushed along it (on eager links and in answer to grafts), the
// blocks the peers accepted from the network (push and pull), and the
// control entries sent. PayloadsPerAccepted is 1 for a perfect tree (each
// block pushed once to each peer that takes it), more for duplicates, less
// when pull delivered some. All zero with Fabric's random push.
type TreeReport struct {
	Payloads            uint64  `json:"payloads"`
	Accepted            uint64  `json:"accepted"`
	PayloadsPerAccepted float64 `json:"payloads_per_accepted"`
	IHaves              uint64  `json:"ihave_entries"`
	Grafts              uint64  `json:"grafts"`
	Prunes              uint64  `json:"prunes"`
}

// RestartReport is one kill (SIGKILL) and restart of a peer.
type RestartReport struct {
	Peer string `json:"peer"`
	// KilledAtSeconds and RestartedAtSeconds are since the testnet started;
	// UpAfterMs is from starting the process again until it was up (store
	// opened, node started, admin API answering).
	KilledAtSeconds    float64                `json:"killed_at_s"`
	RestartedAtSeconds float64                `json:"restarted_at_s"`
	UpAfterMs          float64                `json:"up_after_ms"`
	Channels           []RestartChannelReport `json:"channels"`
}

// RestartChannelReport is one channel of a RestartReport.
type RestartChannelReport struct {
	Name string `json:"name"`
	// PublishedAtKill blocks were published when the peer was killed, of
	// which the harness had seen it deliver SeenBeforeKill; its store, opened
	// by the harness after the crash, held StoredHeight (at least
	// SeenBeforeKill: a block is stored before it is delivered).
	PublishedAtKill int    `json:"published_at_kill"`
	SeenBeforeKill  uint64 `json:"seen_before_kill"`
	StoredHeight    uint64 `json:"stored_height"`
	// PublishedAtRestart blocks were published when the restarted peer was
	// up, at height HeightAtRestart (at least StoredHeight).
	PublishedAtRestart int    `json:"published_at_restart"`
	HeightAtRestart    uint64 `json:"height_at_restart"`
	// FirstDeliveryAfterRestart is the number of the first block the
	// restarted process delivered (it must be StoredHeight); absent if it
	// delivered none before it was killed again.
	FirstDeliveryAfterRestart *uint64 `json:"first_delivery_after_restart,omitempty"`
	// CaughtUpMs is from the restart until the peer delivered block
	// PublishedAtRestart-1; absent if it did not before it was killed again.
	CaughtUpMs *float64 `json:"caught_up_ms,omitempty"`
}

// TopologyReport is the network the testnet ran.
type TopologyReport struct {
	Orgs        int    `json:"orgs"`
	PeersPerOrg int    `json:"peers_per_org"`
	External    int    `json:"external_per_org"`
	Transport   string `json:"transport"`
	// WAN describes the WAN profile the peers ran under; empty: none.
	WAN       string            `json:"wan,omitempty"`
	BlockSize int               `json:"block_size"`
	Blocks    int               `json:"blocks_per_channel"`
	Rate      float64           `json:"rate_per_channel"`
	Channels  []ChannelTopology `json:"channels"`
}

// ChannelTopology is one channel of the topology.
type ChannelTopology struct {
	Name      string   `json:"name"`
	Orgs      []string `json:"orgs"`
	Publisher string   `json:"publisher"`
}

// ChannelReport is the outcome of one channel.
type ChannelReport struct {
	Name          string `json:"name"`
	EligiblePeers int    `json:"eligible_peers"`
	Published     int    `json:"blocks"`
	// Delivered of Expected (block, eligible peer) pairs; Coverage is their
	// ratio.
	Delivered int     `json:"delivered"`
	Expected  int     `json:"expected"`
	Coverage  float64 `json:"coverage"`
	// Leaks counts block envelopes of this channel that reached peers whose
	// org is not a member (accepted or not), from their metrics.
	Leaks int `json:"leaks"`
	// Latency from publish to the last eligible peer's delivery, over the
	// blocks every eligible peer delivered; a restarted peer's deliveries
	// are left out (some of its delivery times are lost with its process,
	// and its catch-up is reported in Restarts).
	// NaN when no block reached every eligible peer (null in JSON).
	LatencyP50Ms Millis `json:"latency_p50_ms"`
	LatencyP99Ms Millis `json:"latency_p99_ms"`
	// FloorMs is, under a WAN profile, the least latency the channel can
	// have (0 without one): the shortest path from the publisher to its
	// farthest member through members, across orgs only between external
	// peers, with the run's link latencies. P50OverFloor and P99OverFloor
	// are LatencyP50Ms and LatencyP99Ms over it (T_full ÷ floor).
	FloorMs      float64 `json:"floor_ms,omitempty"`
	P50OverFloor float64 `json:"latency_p50_over_floor,omitempty"`
	P99OverFloor float64 `json:"latency_p99_over_floor,omitempty"`
	// Amplification is the block envelope bytes of this channel received by
	// all peers (push and pull) per byte of block data delivered to an
	// eligible peer other than the publisher; 1.0 is the floor, the envelope
	// (signature, publisher certificate) adds a little.
	Amplification float64 `json:"amplification"`
	// DuplicatesPerBlock is the block envelopes received beyond the first,
	// per (block, receiving eligible peer).
	DuplicatesPerBlock float64 `json:"duplicates_per_block"`
	// WrongHash counts (block, peer) pairs delivered with a hash other than
	// the publisher's; they are not in Delivered.
	WrongHash int `json:"wrong_hash,omitempty"`
	// Missing lists up to ten (peer, block) pairs that were not delivered
	// (or with a wrong hash).
	Missing []string `json:"missing,omitempty"`
	// LeakedTo lists the non-member peers that received blocks.
	LeakedTo []string `json:"leaked_to,omitempty"`
}

// OK reports whether the channel has full coverage and no leak.
func (c ChannelReport) OK() bool {
	return c.Expected > 0 && c.Delivered == c.Expected && c.Leaks == 0
}

// WriteTable writes the report as a table with a verdict line.
func (r *Report) WriteTable(w io.Writer) {
	wan := r.Topology.WAN != ""
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "channel\torgs\tpublisher\teligible\tblocks\tcoverage\tleaks\tlatency p50\tlatency p99\tbytes/delivered byte\tdup/block"
	if wan {
		header += "\tfloor\tp50 ÷ floor\tp99 ÷ floor"
	}
	fmt.Fprintln(tw, header)
	for i, c := range r.Channels {
		t := r.Topology.Channels[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%.2f\t%.2f",
			c.Name, strings.Join(t.Orgs, ","), t.Publisher, c.EligiblePeers, c.Published,
			fmtPercent(c.Coverage), c.Leaks, fmtMs(float64(c.LatencyP50Ms)), fmtMs(float64(c.LatencyP99Ms)), c.Amplification, c.DuplicatesPerBlock)
		if wan {
			fmt.Fprintf(tw, "\t%s\t%.2f\t%.2f", fmtMs(c.FloorMs), c.P50OverFloor, c.P99OverFloor)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "all traffic (blocks, StateInfo, alive, pull, hello): %s sent, %.2f bytes per delivered byte; %.1fs\n",
		fmtBytes(r.TotalBytesSent), r.OverallAmplification, r.DurationSeconds)
	if r.Cores > 0 && r.DurationSeconds > 0 {
		util := r.PeerCPUSeconds / r.DurationSeconds / float64(r.Cores)
		warn := ""
		if util > 0.7 {
			warn = " ⚠ above 70%: the latencies measure the scheduler as much as the network"
		}
		fmt.Fprintf(w, "peer processes used %.1f CPU s in %.1fs: %.0f%% of %d cores%s\n", r.PeerCPUSeconds, r.DurationSeconds, 100*util, r.Cores, warn)
	}
	if t := r.Tree; t.Payloads > 0 {
		fmt.Fprintf(w, "dissemination tree: %d blocks pushed along it for %d accepted (%.2f per block; 1 is a perfect tree), %d grafts, %d prunes, %d IHAVE entries\n",
			t.Payloads, t.Accepted, t.PayloadsPerAccepted, t.Grafts, t.Prunes, t.IHaves)
	}
	if wan {
		fmt.Fprintf(w, "WAN profile: %s; %d push frames dropped; latency is T_full (publish to the last eligible delivery), floor the shortest path through eligible relays\n",
			r.Topology.WAN, r.FramesDropped)
	}
	for _, rr := range r.Restarts {
		fmt.Fprintf(w, "restart: %s killed (SIGKILL) at %.1fs, restarted at %.1fs, up in %.0fms\n",
			rr.Peer, rr.KilledAtSeconds, rr.RestartedAtSeconds, rr.UpAfterMs)
		for _, c := range rr.Channels {
			first, caught := "none before the next kill", "not before the next kill"
			if c.FirstDeliveryAfterRestart != nil {
				first = fmt.Sprintf("block %d", *c.FirstDeliveryAfterRestart)
			}
			if c.CaughtUpMs != nil {
				caught = fmt.Sprintf("in %.0fms", *c.CaughtUpMs)
			}
			fmt.Fprintf(w, "  %s: at the kill %d published, %d seen delivered, store reopened at height %d; at the restart %d published, height %d; first delivery %s; caught up %s\n",
				c.Name, c.PublishedAtKill, c.SeenBeforeKill, c.StoredHeight, c.PublishedAtRestart, c.HeightAtRestart, first, caught)
		}
	}
	if len(r.Restarts) > 0 {
		fmt.Fprintf(w, "coverage counts %s's blocks seen in its delivery log before a kill or, after a restart, in its ledger (read from its store) with the publisher's hash; latency leaves it out\n",
			r.Restarts[0].Peer)
	}
	for _, p := range r.RestartProblems {
		fmt.Fprintf(w, "restart: PROBLEM: %s\n", p)
	}
	for _, c := range r.Channels {
		if c.WrongHash > 0 {
			fmt.Fprintf(w, "%s: %d deliveries with a hash other than the publisher's\n", c.Name, c.WrongHash)
		}
		if len(c.Missing) > 0 {
			fmt.Fprintf(w, "%s: not delivered (peer/block, first %d): %s\n", c.Name, len(c.Missing), strings.Join(c.Missing, " "))
		}
		if len(c.LeakedTo) > 0 {
			fmt.Fprintf(w, "%s: LEAKED to non-members: %s\n", c.Name, strings.Join(c.LeakedTo, " "))
		}
	}
	switch {
	case r.Passed && len(r.Restarts) > 0:
		fmt.Fprintln(w, "PASS: 100% coverage and 0 leaks on every channel, every restart resumed from its store")
	case r.Passed:
		fmt.Fprintln(w, "PASS: 100% coverage and 0 leaks on every channel")
	case len(r.RestartProblems) > 0:
		fmt.Fprintln(w, "FAIL: a restart did not resume where its store left off, or a channel has coverage below 100% or leaks")
	default:
		fmt.Fprintln(w, "FAIL: a channel has coverage below 100% or leaks")
	}
}

// Millis is a duration in milliseconds that may be unknown (NaN), which
// JSON writes as null.
type Millis float64

// MarshalJSON writes m, or null for NaN.
func (m Millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(m))
}

// UnmarshalJSON reads m, NaN for null.
func (m *Millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Millis(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(m))
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func fmtPercent(f float64) string {
	if f < 1 && f > 0.9999 {
		return "99.99%" // never round a miss up to 100%
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

func fmtMs(ms float64) string {
	if math.IsNaN(ms) {
		return "-"
	}
	return fmt.Sprintf("%.1fms", ms)
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// percentile returns the q-quantile (nearest rank) of ds in milliseconds,
// NaN for none.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// peerMetrics are the counters of one peer the report needs.
type peerMetrics struct {
	blocksReceived map[string]float64 // channel
	blockBytes     map[string]float64 // channel
	accepted       map[string]float64 // channel, from the network (push and pull)
	bytesSent      float64            // every fabgossip protocol
	framesDropped  float64            // by the WAN profile's loss
	cpuSeconds     float64            // the process's CPU time
	treePayloads   float64            // blocks pushed along the tree
	treeControl    map[string]float64 // tree control entries sent, by kind
}

func newPeerMetrics() peerMetrics {
	return peerMetrics{blocksReceived: map[string]float64{}, blockBytes: map[string]float64{}, accepted: map[string]float64{}, treeControl: map[string]float64{}}
}

// add adds o's counters to m's (a restarted peer's earlier processes).
func (m *peerMetrics) add(o peerMetrics) {
	for _, pair := range []struct{ dst, src map[string]float64 }{
		{m.blocksReceived, o.blocksReceived}, {m.blockBytes, o.blockBytes}, {m.accepted, o.accepted}, {m.treeControl, o.treeControl},
	} {
		for k, v := range pair.src {
			pair.dst[k] += v
		}
	}
	m.bytesSent += o.bytesSent
	m.framesDropped += o.framesDropped
	m.cpuSeconds += o.cpuSeconds
	m.treePayloads += o.treePayloads
}

// parseMetrics reads the Prometheus text a peer's /metrics served.
func parseMetrics(text []byte) (peerMetrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return peerMetrics{}, fmt.Errorf("parse metrics: %w", err)
	}
	m := peerMetrics{
		blocksReceived: byLabel(fams["fabgossip_channel_blocks_received_total"], "channel", nil),
		blockBytes:     byLabel(fams["fabgossip_channel_block_bytes_received_total"], "channel", nil),
		accepted: byLabel(fams["fabgossip_channel_blocks_accepted_total"], "channel", func(mt *dto.Metric) bool {
			return label(mt, "path") != "publish"
		}),
		treeControl: byLabel(fams["fabgossip_tree_control_sent_total"], "kind", nil),
	}
	for _, v := range byLabel(fams["fabgossip_tree_payloads_sent_total"], "", nil) {
		m.treePayloads += v
	}
	for _, v := range byLabel(fams["fabgossip_transport_bytes_sent_total"], "protocol", nil) {
		m.bytesSent += v
	}
	for _, v := range byLabel(fams["fabgossip_testnet_frames_dropped_total"], "", nil) {
		m.framesDropped += v
	}
	for _, v := range byLabel(fams["process_cpu_seconds_total"], "", nil) {
		m.cpuSeconds += v
	}
	return m, nil
}

// byLabel sums a counter family's values by one label.
func byLabel(f *dto.MetricFamily, name string, keep func(*dto.Metric) bool) map[string]float64 {
	out := map[string]float64{}
	if f == nil {
		return out
	}
	for _, mt := range f.GetMetric() {
		if keep != nil && !keep(mt) {
			continue
		}
		out[label(mt, name)] += mt.GetCounter().GetValue()
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
