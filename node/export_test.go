package node

import (
	"math/rand/v2"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// InjectEnvelope hands env to n as if from had pushed it.
func (n *Node) InjectEnvelope(from peer.ID, env *wire.Envelope) { n.handleEnvelope(from, env, ViaPush) }

// DropInboundPush makes n discard each received push frame with probability
// rate, decided by a seeded RNG.
func (n *Node) DropInboundPush(rate float64, seed uint64) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	n.pushLoss = func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64() < rate
	}
}

// TamperFetch makes n serve, in answer to fetch requests, what tamper makes of
// each block envelope: a byzantine responder.
func (n *Node) TamperFetch(tamper func(*wire.Envelope) *wire.Envelope) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetchTamper = tamper
}

// WrapKey makes n sign everything from now on with wrap(its key).
func (n *Node) WrapKey(wrap func(crypto.PrivKey) crypto.PrivKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.key = wrap(n.key)
}
