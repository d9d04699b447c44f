package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-varint"
	"google.golang.org/protobuf/proto"
)

// gossipSubDialsPerTopic is how many other participants of a topic each
// participant dials: about 20 topic connections per peer, the degree of the
// GossipSub v1.1 evaluation, instead of a full mesh in which flood publish
// (off here anyway) would reach everyone in one hop.
const gossipSubDialsPerTopic = 10

// gossipSubSUT is one GossipSub router per host, one topic per channel:
// members subscribe, and so does one curious non-member per channel (the
// outsider host for a channel every org is in).
type gossipSubSUT struct {
	mn     mocknet.Mocknet // nil over TCP
	net    *sysNet
	l      *layout
	cancel context.CancelFunc
	wg     sync.WaitGroup
	topics map[int]*pubsub.Topic // channel → the publisher's topic handle
	hosts  hostList              // by peer index, the outsider last (crash.go)
	sign   *blockSigner          // nil: StrictSign; set: gossipsub-nosign (gossipsub_nosign.go)
}

// newGossipSub builds SystemGossipSub, or SystemGossipSubNoSign if noSign.
func newGossipSub(ctx context.Context, env *runEnv, noSign bool) (*gossipSubSUT, error) {
	l := env.l
	net := newSysNet(env)
	hosts, err := net.peerHosts(env, true)
	if err != nil {
		return nil, errors.Join(err, net.close())
	}
	outsider := l.peers()
	rctx, cancel := context.WithCancel(context.Background())
	s := &gossipSubSUT{mn: net.mn, net: net, l: l, cancel: cancel, topics: map[int]*pubsub.Topic{}, hosts: hosts, sign: newBlockSigner(noSign)}
	fail := func(err error) (*gossipSubSUT, error) { return nil, errors.Join(err, s.close()) }

	// participants[c] are the hosts subscribed to channel c's topic.
	participants := make([][]int, len(l.channels))
	for c, ch := range l.channels {
		participants[c] = slices.Clone(ch.members)
		cur := ch.curious
		if cur < 0 {
			cur = outsider
		}
		participants[c] = append(participants[c], cur)
	}
	maxMsg := max(pubsub.DefaultMaxMessageSize, env.size+64<<10)
	type sub struct {
		c, host int
		topic   *pubsub.Topic
	}
	var need []topicNeed
	var subs []sub
	for i, h := range hosts {
		var mine []int
		for c := range l.channels {
			if slices.Contains(participants[c], i) {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			continue
		}
		ps, err := pubsub.NewGossipSub(rctx, h,
			pubsub.WithRawTracer(&gsTracer{rec: env.rec, idx: i, self: h.ID()}),
			pubsub.WithMaxMessageSize(maxMsg), s.sign.option())
		if err != nil {
			return fail(err)
		}
		for _, c := range mine {
			t, err := ps.Join(topicName(l, c))
			if err != nil {
				return fail(err)
			}
			if err := s.sign.join(ps, l, hosts, c, i); err != nil {
				return fail(err)
			}
			subs = append(subs, sub{c, i, t})
			need = append(need, topicNeed{t, min(pubsub.DefaultGossipSubParams().Dlo, len(participants[c])-1)})
			if i == l.channels[c].publisher {
				s.topics[c] = t
			}
		}
	}
	for _, x := range subs {
		sb, err := x.topic.Subscribe(pubsub.WithBufferSize(2*env.blocks + 64))
		if err != nil {
			return fail(err)
		}
		member := slices.Contains(l.channels[x.c].members, x.host)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer sb.Cancel()
			for {
				m, err := sb.Next(rctx)
				if err != nil {
					return
				}
				c, num, ok := readHeader(m.Data)
				if !ok || c != x.c {
					continue
				}
				if !member {
					env.rec.leaks.Add(1)
					continue
				}
				env.rec.arrived(c, num, x.host, true)
			}
		}()
	}

	rng := rand.New(rand.NewPCG(env.seed, 0x6773)) // "gs"
	for c := range l.channels {
		ps := participants[c]
		for _, i := range ps {
			others := slices.DeleteFunc(slices.Clone(ps), func(j int) bool { return j == i })
			rng.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
			for _, j := range others[:min(gossipSubDialsPerTopic, len(others))] {
				if err := net.connect(ctx, hosts[i], hosts[j]); err != nil {
					return fail(fmt.Errorf("connect %d to %d: %w", i, j, err))
				}
			}
		}
	}
	if err := s.warmup(ctx, env, need); err != nil {
		return fail(err)
	}
	return s, nil
}

// topicNeed is a subscription and how many topic peers it should know
// before the meshes can form.
type topicNeed struct {
	t     *pubsub.Topic
	peers int
}

func topicName(l *layout, c int) string { return "/fabgossip-bench/" + l.channels[c].name }

// warmup waits until every participant knows at least Dlo topic peers (or
// all the other participants, if fewer), then three heartbeats for the
// meshes to form.
func (s *gossipSubSUT) warmup(ctx context.Context, env *runEnv, need []topicNeed) error {
	deadline := time.Now().Add(env.warmup)
	for {
		short := 0
		for _, n := range need {
			if len(n.t.ListPeers()) < n.peers {
				short++
			}
		}
		if short == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gossipsub: %d topic subscriptions still know too few topic peers after %v", short, env.warmup)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return sleep(ctx, 3*pubsub.DefaultGossipSubParams().HeartbeatInterval)
}

func (s *gossipSubSUT) publish(ctx context.Context, c int, _ uint64, data []byte) error {
	data, err := s.sign.block(c, data)
	if err != nil {
		return err
	}
	return s.topics[c].Publish(ctx, data)
}

func (s *gossipSubSUT) describe() (string, string) {
	p := pubsub.DefaultGossipSubParams()
	return fmt.Sprintf("go-libp2p-pubsub v0.19.0 GossipSub, DefaultGossipSubParams (D %d, Dlo %d, Dhi %d, Dlazy %d, heartbeat %v), %s, flood publish off, each topic participant dials %d others of its topic",
			p.D, p.Dlo, p.Dhi, p.Dlazy, p.HeartbeatInterval, s.sign, gossipSubDialsPerTopic),
		"one curious non-member per channel subscribes to the channel's topic (a peer of a non-member org, or an outsider host with no org when every org is a member); every message delivered to it is a leak"
}

func (s *gossipSubSUT) close() error {
	s.cancel()
	err := s.net.close()
	s.wg.Wait()
	return err
}

// gsTracer counts, for one host, the bytes of every RPC written to a stream
// (uvarint length + protobuf, exactly what pubsub's comm.go writes), the
// payload copies sent and received.
type gsTracer struct {
	rec  *recorder
	idx  int
	self peer.ID
}

var _ pubsub.RawTracer = (*gsTracer)(nil)

func (t *gsTracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	n := proto.Size(&rpc.RPC)
	t.rec.bytesSent(t.idx, n+varint.UvarintSize(uint64(n)))
	t.rec.sentCopies.Add(int64(len(rpc.Publish)))
}

func (t *gsTracer) DeliverMessage(m *pubsub.Message) {
	if m.ReceivedFrom != t.self {
		t.rec.copies.Add(1)
	}
}

func (t *gsTracer) DuplicateMessage(*pubsub.Message) { t.rec.copies.Add(1) }

func (t *gsTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *gsTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *gsTracer) Join(string)                              {}
func (t *gsTracer) Leave(string)                             {}
func (t *gsTracer) Graft(peer.ID, string)                    {}
func (t *gsTracer) Prune(peer.ID, string)                    {}
func (t *gsTracer) ValidateMessage(*pubsub.Message)          {}
func (t *gsTracer) RejectMessage(*pubsub.Message, string)    {}
func (t *gsTracer) ThrottlePeer(peer.ID)                     {}
func (t *gsTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *gsTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t *gsTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (t *gsTracer) UndeliverableMessage(*pubsub.Message)     {}
