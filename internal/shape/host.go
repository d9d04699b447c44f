package shape

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport"
)

// Host is one peer's host shaped as a Plan says: the streams it opens and
// accepts get the plan's latency to their remote peer (Delay), one egress
// token bucket (Egress) and, on the push protocol, frame loss (Loss). Hand
// the embedded host.Host to the node, and close the Host instead of the
// host it wraps.
type Host struct {
	host.Host // shaped

	inner  host.Host
	egress *Egress
	delay  *Delay
	desc   string
}

// New shapes h, which must be one of plan's peers, as plan says; onDrop (nil:
// none) is called for every frame the loss drops.
func New(h host.Host, plan *Plan, onDrop func()) (*Host, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	self := plan.Index(h.ID())
	if self < 0 {
		return nil, fmt.Errorf("shaping plan: peer %s is not in it", h.ID())
	}
	lat := plan.Latencies()
	index := make(map[peer.ID]int, len(plan.Peers))
	for i, q := range plan.Peers {
		index[q.ID] = i
	}
	latency := func(remote peer.ID) time.Duration {
		if i, ok := index[remote]; ok {
			return lat.Between(self, i)
		}
		return time.Duration(plan.InterOrgLatency)
	}
	egress := NewEgress(plan.EgressMbps)
	delay := NewDelay(latency)
	loss := NewLoss(plan.Loss, plan.Seed, func(pid protocol.ID) bool { return pid == transport.ProtocolPush }, onDrop)
	s := &Host{
		Host:  loss.Wrap(self, delay.Wrap(egress.Wrap(h))),
		inner: h, egress: egress, delay: delay,
		desc: fmt.Sprintf("one-way latency %v inside an org and %v between orgs (±%.0f%% per link, seed %d), %s, %.3g%% of push frames dropped on receipt",
			time.Duration(plan.IntraOrgLatency), time.Duration(plan.InterOrgLatency), 100*plan.Jitter, plan.Seed, egress, 100*plan.Loss),
	}
	return s, nil
}

// Close stops the egress limiter (no write waits for tokens any more),
// closes the wrapped host, and waits for every stream's delay pump, which
// closing the host ends.
func (h *Host) Close() error {
	h.egress.Stop()
	err := h.inner.Close()
	h.delay.Wait()
	return err
}

// String describes the shaping, for logs.
func (h *Host) String() string { return h.desc }
