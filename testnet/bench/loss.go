package bench

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/transport"
)

// The loss fault (Options.Loss) is shape.Loss on every system's payload
// protocols, seeded from the run's seed and each host's layout index, so
// every system of a seed draws from the same streams: fabgossip's push
// stream, every GossipSub RPC (messages, IHAVE, IWANT, GRAFT, PRUNE) and the
// direct system's stream (its empty opener frame is never dropped).
// fabgossip's pull and hello are not lossy.

// lossDrop is the Result.Drops key of the frames the loss fault dropped.
const lossDrop = "bench loss: frames dropped"

// newLoss returns the loss of rate for a run of seed, counting its drops in
// rec (nil: not counted), or nil for rate ≤ 0.
func newLoss(rate float64, seed uint64, rec *recorder) *shape.Loss {
	var onDrop func()
	if rec != nil {
		onDrop = func() { rec.dropped(lossDrop, 1) }
	}
	return shape.NewLoss(rate, seed, lossyProtocol, onDrop)
}

// lossText describes the loss fault of rate for the report.
func lossText(rate float64) string {
	if rate <= 0 {
		return "no frame loss"
	}
	return fmt.Sprintf("%g%% of payload frames dropped at random on receipt (fabgossip push, GossipSub RPCs, direct; not pull or hello)", 100*rate)
}

// lossyProtocol reports whether frames of pid are subject to loss.
func lossyProtocol(pid protocol.ID) bool {
	switch {
	case pid == transport.ProtocolPush, pid == ProtocolDirect:
		return true
	case strings.HasPrefix(string(pid), "/meshsub/"), strings.HasPrefix(string(pid), "/floodsub/"):
		return true
	}
	return false
}

// lossMarkdown is the loss table of a report, "" for a run without loss:
// per system, block size and seed, how much arrived within 1 s.
func (r *Report) lossMarkdown() string {
	if r.Workload.Loss <= 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Loss fault: %s. Target: 100%% within 1 s.\n\n", lossText(r.Workload.Loss))
	b.WriteString("| system | size | seed | cov within 1 s | P_full within 1 s | cov_final | T_full p50 / p99 / max (ms) |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, x := range r.Results {
		if x.Error != "" {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.4f | %.3f | %.4f | %.0f / %.0f / %.0f |\n",
			x.System, sizeName(x.BlockSize), x.Seed, x.Cov1s, x.PFull1s, x.CovFinal, x.TFullP50Ms, x.TFullP99Ms, x.TFullMaxMs)
	}
	b.WriteString("\n")
	return b.String()
}
