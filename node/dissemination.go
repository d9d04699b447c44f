package node

import (
	"errors"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/batching"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Dissemination: what this peer pushes and to whom. Every block, StateInfo
// and alive to be pushed goes through the emitter (batching), and each flush
// is planned by routing.Plan against the current view.

// outMsg is what travels through the emitter: routing facts and the envelope.
type outMsg = routing.Message[*wire.Envelope]

// sendBatch is the emitter's send function: plan, then hand each peer its
// frame. It runs on the emitter's single flush goroutine, outside any lock.
func (n *Node) sendBatch(batch []outMsg) {
	v := n.view()
	sends := routing.Plan(n.planCfg, batch, v.View, n.planRng)
	for _, s := range sends {
		// A frame carries at most MaxBatchEnvelopes envelopes: a receiver
		// refuses more before decoding.
		for msgs := range slices.Chunk(s.Messages, n.maxEnvelopes) {
			b := &wire.Batch{Envelopes: make([]*wire.Envelope, 0, len(msgs))}
			var headers []*chunkedBlock
			for _, m := range msgs {
				// A chunked header goes only to a peer that takes chunks,
				// and its chunks follow it.
				if ch, num, _, ok := peekBlock(m.Payload.GetPayload()); ok {
					if c, capable := n.chunkedHeld(ch, num, s.To); c != nil {
						if !capable {
							n.metrics.dropped.WithLabelValues("block", reasonNoChunkSupport).Inc()
							continue
						}
						headers = append(headers, c)
					}
				}
				if m.StripSecret {
					b.Envelopes = append(b.Envelopes, transport.StripSecret(m.Payload))
				} else {
					b.Envelopes = append(b.Envelopes, m.Payload)
				}
			}
			if len(b.Envelopes) > 0 && n.push(s.To, b) {
				for _, c := range headers {
					n.headerSent(s.To, c)
				}
			}
		}
	}
}

// push hands one frame to the network, counting and tracing it. Nothing is
// sent to a peer rejected within its back-off: a send would dial it again.
func (n *Node) push(to peer.ID, b *wire.Batch) bool {
	if n.rejectedRecently(to) {
		return false
	}
	if err := n.tr.Send(to, b); err != nil {
		n.metrics.sendErrors.Inc()
		n.log.Debug("push send failed", "to", to.String(), "err", err)
		return false
	}
	n.metrics.batchesSent.Inc()
	n.tracer.BatchSent(to, b)
	return true
}

// emit hands a message to the emitter; a full emitter drops it (counted):
// gossip is best effort and pull repairs.
func (n *Node) emit(m outMsg, key string) {
	if err := n.emitter.Add(batching.Item[outMsg]{Msg: m, Key: key, Size: envSize(m.Payload)}); err != nil {
		if errors.Is(err, batching.ErrFull) {
			n.metrics.dropped.WithLabelValues(m.Kind.String(), "emitter_full").Inc()
		}
	}
}
