package node

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Test seams. Faults are injected by wrapping the node's Network and
// Handlers, never by hooks in the node itself.

// InjectEnvelope hands env to n as if from had pushed it.
func (n *Node) InjectEnvelope(from peer.ID, env *wire.Envelope) { n.handleEnvelope(from, env, ViaPush) }

// WithNetworkWrap builds the node's network as usual and lets wrap change
// its inbound handlers and its outbound network.
func WithNetworkWrap(wrapHandlers func(Handlers) Handlers, wrapNetwork func(Network) Network) Option {
	return func(o *options) {
		build := o.network
		o.network = func(h host.Host, cfg transport.Config, hs Handlers, opts ...transport.Option) (Network, error) {
			if wrapHandlers != nil {
				hs = wrapHandlers(hs)
			}
			nw, err := build(h, cfg, hs, opts...)
			if err != nil || wrapNetwork == nil {
				return nw, err
			}
			return wrapNetwork(nw), nil
		}
	}
}

// WithInboundPushLoss makes the node discard each received push frame with
// probability rate, decided by a seeded RNG.
func WithInboundPushLoss(rate float64, seed uint64) Option {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	return WithNetworkWrap(func(hs Handlers) Handlers {
		push := hs.Push
		hs.Push = func(from peer.ID, b *wire.Batch) bool {
			mu.Lock()
			lost := rng.Float64() < rate
			mu.Unlock()
			return lost || push(from, b)
		}
		return hs
	}, nil)
}

// WithFetchTamper makes the node serve, in answer to fetch requests, what
// tamper makes of each block envelope: a byzantine responder. tamper may
// return env unchanged.
func WithFetchTamper(tamper func(*wire.Envelope) *wire.Envelope) Option {
	return WithNetworkWrap(func(hs Handlers) Handlers {
		pull := hs.Pull
		hs.Pull = func(ctx context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
			resp, err := pull(ctx, from, req)
			if f := resp.GetFetch(); f != nil {
				for i, env := range f.Blocks {
					f.Blocks[i] = tamper(env)
				}
			}
			return resp, err
		}
		return hs
	}, nil)
}

// WrapKey makes n sign everything from now on with wrap(its key).
func (n *Node) WrapKey(wrap func(crypto.PrivKey) crypto.PrivKey) {
	k := wrap(n.signingKey())
	n.key.Store(&k)
}

// Score is p's misbehaviour score now.
func (n *Node) Score(p peer.ID) float64 { return n.scores.score(p, n.now()) }

// Admits reports whether n reads push and pull streams from p.
func (n *Node) Admits(p peer.ID) bool { return n.admitted(p, "") }

// PendingStrangers is how many inbound connections await their hello.
func (n *Node) PendingStrangers() int {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	return len(n.strangers)
}

// MaxPendingStrangers is maxPendingStrangers.
const MaxPendingStrangers = maxPendingStrangers

// MaxRefusedBeforeHello is maxRefusedBeforeHello.
const MaxRefusedBeforeHello = maxRefusedBeforeHello

// HandleHello answers req as if from had sent it on a hello stream.
func (n *Node) HandleHello(from peer.ID, req *wire.Hello) (*wire.Hello, error) {
	return n.handleHello(context.Background(), from, req)
}

// HelloEnvelope is the alive n sends in its hellos.
func (n *Node) HelloEnvelope() (*wire.Envelope, error) { return n.helloEnvelope() }

// Forgive forgets p's rejections and score, as if its back-off had passed.
func (n *Node) Forgive(p peer.ID) {
	n.pendingMu.Lock()
	delete(n.rejected, p)
	n.pendingMu.Unlock()
	n.scores.mu.Lock()
	delete(n.scores.peers, p)
	n.scores.mu.Unlock()
}

// SignHeartbeat signs n's next slim heartbeat.
func (n *Node) SignHeartbeat() (*wire.Envelope, error) { return n.signAlive(false) }
