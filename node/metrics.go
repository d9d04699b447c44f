package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus metrics, all prefixed fabgossip_.
type metrics struct {
	batchesSent     prometheus.Counter
	sendErrors      prometheus.Counter
	received        *prometheus.CounterVec // by kind
	dropped         *prometheus.CounterVec // by kind and reason
	duplicates      *prometheus.CounterVec // by kind
	blocksDelivered prometheus.Counter
	deliveryLatency prometheus.Histogram
	blocksAccepted  *prometheus.CounterVec // by path
	pullRounds      prometheus.Counter
	storeErrors     prometheus.Counter
	handshakes      *prometheus.CounterVec // by result
	peers           *prometheus.GaugeVec   // live peers by org
	treePayloads    prometheus.Counter
	treeControl     *prometheus.CounterVec // by kind
	stripes         prometheus.Counter
	earlyChunks     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batchesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_batches_sent_total", Help: "Push frames handed to the transport.",
		}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_send_errors_total", Help: "Push frames the transport refused (queue full, closed).",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_messages_received_total", Help: "Envelopes received, by kind.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_messages_dropped_total", Help: "Messages refused, by kind and reason.",
		}, []string{"kind", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_dedup_hits_total", Help: "Messages already held, by kind.",
		}, []string{"kind"}),
		blocksDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_blocks_delivered_total", Help: "Blocks delivered in order.",
		}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fabgossip_block_delivery_latency_seconds",
			Help:    "From a block's publication (the publisher's clock) to its in-order delivery here (this clock).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
		}),
		blocksAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_blocks_accepted_total", Help: "Blocks accepted, by how they arrived.",
		}, []string{"path"}),
		pullRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_pull_rounds_total", Help: "Digest requests sent by block pull.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_store_errors_total", Help: "Block store writes that failed (the blocks stay held and are retried).",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_handshakes_total", Help: "Hello handshakes, by result.",
		}, []string{"result"}),
		peers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fabgossip_peers", Help: "Live peers in the membership view, by org.",
		}, []string{"org"}),
		treePayloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_tree_payloads_sent_total", Help: "Blocks pushed along the dissemination tree (eager links and graft answers).",
		}),
		treeControl: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_tree_control_sent_total", Help: "Tree control entries sent, by kind (ihave, graft, prune).",
		}, []string{"kind"}),
		stripes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_chunk_stripes_total", Help: "Chunked blocks this peer published and striped over its org.",
		}),
		earlyChunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabgossip_chunks_early_total", Help: "Chunks held because they arrived before their block's header.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.batchesSent, m.sendErrors, m.received, m.dropped, m.duplicates, m.blocksDelivered, m.deliveryLatency,
		m.blocksAccepted, m.pullRounds, m.storeErrors, m.handshakes, m.peers, m.treePayloads, m.treeControl,
		m.stripes, m.earlyChunks,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
