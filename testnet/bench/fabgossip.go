package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// fabgossipSUT is a testnet.Cluster of fabgossip peers, every member joined
// to its channels, plus an outsider host with no org that listens on the
// fabgossip protocols and counts anything it receives as a leak.
type fabgossipSUT struct {
	c        *testnet.Cluster
	l        *layout
	cfg      node.Config
	cfgName  string
	outsider host.Host
	// net builds the outsider over TCP and holds the egress limiter.
	net *sysNet
	// warmupMissing counts the (peer, channel, expected peer) triples still
	// missing from the views when the warm-up timed out.
	warmupMissing int
}

func newFabgossip(ctx context.Context, env *runEnv, cfg node.Config, cfgName string) (*fabgossipSUT, error) {
	l := env.l
	chIndex := map[string]int{}
	for i, c := range l.channels {
		chIndex[c.name] = i
	}
	macs := map[string]int{} // StateInfo channel MAC → channel index, filled once peer IDs exist
	ids := map[peer.ID]int{} // peer ID → peer index, likewise
	net := newSysNet(env)
	c, err := testnet.NewCluster(l.topo, testnet.Options{
		Config: &cfg,
		Seed:   env.seed,
		NodeOptions: func(p *testnet.Peer) []node.Option {
			t := &fabTracer{rec: env.rec, idx: p.Index, org: l.org[p.Index], chIndex: chIndex, macs: macs, ids: ids}
			return []node.Option{node.WithTracer(t), node.WithTransportTracer(&fabBytes{rec: env.rec, idx: p.Index})}
		},
		Latency:  env.linkLatencies().Between,
		Hosts:    net.clusterHosts(),
		WrapHost: net.clusterWrap(),
	})
	if err != nil {
		return nil, errors.Join(err, net.close())
	}
	s := &fabgossipSUT{c: c, l: l, cfg: cfg, cfgName: cfgName, net: net}
	for _, p := range c.Peers {
		ids[p.Host.ID()] = p.Index
		for ci, ch := range l.channels {
			macs[string(stateInfoMAC(p.Host.ID(), ch.name))] = ci
		}
	}
	if err := s.addOutsider(env); err != nil {
		return nil, errors.Join(err, s.close())
	}
	started := time.Now()
	if err := c.Start(ctx); err != nil {
		return nil, errors.Join(err, s.close())
	}
	for _, ch := range l.channels {
		for _, m := range ch.members {
			if err := c.Peers[m].JoinChannel(ch.name); err != nil {
				return nil, errors.Join(err, s.close())
			}
		}
	}
	for _, p := range c.Peers {
		if err := net.connect(ctx, s.outsider, p.Host); err != nil {
			return nil, errors.Join(fmt.Errorf("outsider connect: %w", err), s.close())
		}
	}
	if err := s.converge(ctx, env); err != nil {
		return nil, errors.Join(err, s.close())
	}
	// The idle window measures the steady state: a peer's heartbeats carry
	// its certificate only for PublishCertPeriod after its start (as
	// Fabric's), so the warm-up lasts at least that long.
	if err := sleep(ctx, time.Until(started.Add(cfg.PublishCertPeriod))); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// addOutsider adds a host with no org and no certificate to the cluster's
// mocknet, linked to every peer at inter-org latency (over TCP, a loopback
// host). It handles the push and pull protocols: any stream a peer opens to
// it is a leak.
func (s *fabgossipSUT) addOutsider(env *runEnv) error {
	h, err := s.net.fabOutsider(s.c, env.lat)
	if err != nil {
		return err
	}
	s.outsider = h
	leak := func(st network.Stream) {
		env.rec.leaks.Add(1)
		_, _ = io.Copy(io.Discard, io.LimitReader(st, 8<<20))
		_ = st.Reset()
	}
	h.SetStreamHandler(transport.ProtocolPush, leak)
	h.SetStreamHandler(transport.ProtocolPull, leak)
	return nil
}

// converge waits until every member sees, as eligible for each of its
// channels, every peer it may exchange blocks with: the other members of its
// org, and, if it is external, the external members of the other orgs. Past
// the warm-up timeout it gives up, reports what is still missing, and the run
// goes on with the views as they are (Result.WarmupMissing).
func (s *fabgossipSUT) converge(ctx context.Context, env *runEnv) error {
	l := env.l
	deadline := time.Now().Add(env.warmup)
	for {
		var missing []string
		for _, ch := range l.channels {
			for _, m := range ch.members {
				seen := map[peer.ID]bool{}
				for _, p := range s.c.Peers[m].ChannelPeers(ch.name) {
					seen[p.ID] = true
				}
				for _, q := range ch.members {
					if q != m && (l.org[q] == l.org[m] || (l.external[q] && l.external[m])) && !seen[s.c.Peers[q].Host.ID()] {
						missing = append(missing, fmt.Sprintf("peer %d lacks peer %d on %s", m, q, ch.name))
					}
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			s.warmupMissing = len(missing)
			fmt.Fprintf(env.progress, "bench: membership not converged after %v, going on: %d missing (%s)\n",
				env.warmup, len(missing), strings.Join(missing[:min(5, len(missing))], "; "))
			return nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

func (s *fabgossipSUT) publish(ctx context.Context, c int, num uint64, data []byte) error {
	ch := s.l.channels[c]
	b, err := s.c.Peers[ch.publisher].Publish(ctx, ch.name, data)
	if err != nil {
		return err
	}
	if b.Number != num {
		return fmt.Errorf("published as block %d, expected %d", b.Number, num)
	}
	return nil
}

func (s *fabgossipSUT) describe() (string, string) {
	c, name := s.cfg, s.cfgName
	return fmt.Sprintf("%s: PropagatePeerNum %d, PropagateIterations %d, emitter %v / %d messages, CrossOrgPeerNum %d, pull every %v from %d peers (blocks held %v or more), block window %d, StateInfo every %v, alive every %v",
			name, c.PropagatePeerNum, c.PropagateIterations, c.MaxPropagationBurstLatency, c.MaxPropagationBurstSize, c.CrossOrgPeerNum,
			c.PullInterval, c.PullPeerNum, c.PullGrace, c.MaxBlockCountToStore, c.PublishStateInfoInterval, c.AliveTimeInterval),
		"every peer's tracer counts block envelopes and StateInfo of a channel that reach a peer of a non-member org; an outsider host with no org, connected to every peer, counts any push or pull stream opened to it"
}

func (s *fabgossipSUT) close() error {
	s.net.stop() // no writer holds up the close waiting for egress tokens
	// The cluster closes its mocknet (the outsider included) or its
	// loopback hosts; s.net closes a loopback outsider.
	return errors.Join(s.c.Close(), s.net.close())
}

// stateInfoMAC is how a StateInfo names its channel: SHA-256(peer ID ‖ name).
func stateInfoMAC(p peer.ID, ch string) []byte {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte(ch))
	return h.Sum(nil)
}

// fabTracer is one peer's node and transport tracer: it reports arrivals,
// payload copies, leaks and framed bytes to the recorder.
type fabTracer struct {
	node.NopTracer
	rec     *recorder
	idx     int
	org     int
	chIndex map[string]int  // read-only once the cluster is built
	macs    map[string]int  // read-only once the cluster is built
	ids     map[peer.ID]int // read-only once the cluster is built
}

// index returns the peer index of p, -1 for a peer outside the cluster.
func (t *fabTracer) index(p peer.ID) int {
	if i, ok := t.ids[p]; ok {
		return i
	}
	return -1
}

var (
	_ node.Tracer           = (*fabTracer)(nil)
	_ node.CompletionTracer = (*fabTracer)(nil)
)

func (t *fabTracer) member(c int) bool { return slices.Contains(t.rec.l.channels[c].orgs, t.org) }

// BlockAccepted records a member's first receipt; a block accepted by pull
// also counts as one payload transmission (pull fetches only what is missing).
// A chunked block's header is accepted before its data: it is recorded by
// BlockCompleted, when its data is whole.
func (t *fabTracer) BlockAccepted(b node.Block, from peer.ID, via node.Path) {
	if !b.Chunked {
		t.arrived(b, from, via)
	}
}

// BlockCompleted records a chunked block's receipt, when its last chunk
// arrives.
func (t *fabTracer) BlockCompleted(b node.Block, from peer.ID, via node.Path) {
	t.arrived(b, from, via)
}

func (t *fabTracer) arrived(b node.Block, from peer.ID, via node.Path) {
	c, ok := t.chIndex[b.Channel]
	if !ok || via == node.ViaPublish {
		return
	}
	if via == node.ViaPull {
		t.rec.sentCopies.Add(1)
	}
	t.rec.arrivedFrom(c, b.Number, t.idx, via == node.ViaPush, t.index(from))
}

// Received counts every block envelope that reaches the peer, and a leak for
// a block or StateInfo of a channel its org is not a member of.
func (t *fabTracer) Received(_ peer.ID, env *wire.Envelope) {
	kind, key := peekMessage(env.GetPayload())
	switch kind {
	case kindBlock:
		t.rec.copies.Add(1)
		if c, ok := t.chIndex[key]; ok && !t.member(c) {
			t.rec.leaks.Add(1)
		}
	case kindStateInfo:
		if c, ok := t.macs[key]; ok && !t.member(c) {
			t.rec.leaks.Add(1)
		}
	}
}

// Dropped counts the node's refusals (duplicates are not drops).
func (t *fabTracer) Dropped(kind, reason string, _ peer.ID) {
	t.rec.dropped("node/"+kind+"/"+reason, 1)
}

// BatchSent counts the block envelopes pushed, and traces the pushes,
// IHAVEs and GRAFTs of each block toward each member (misses.go).
func (t *fabTracer) BatchSent(to peer.ID, b *wire.Batch) {
	dst := t.index(to)
	for _, env := range b.GetEnvelopes() {
		if k, _ := peekMessage(env.GetPayload()); k == kindBlock {
			t.rec.sentCopies.Add(1)
			if ch, num, ok := peekBlockNumber(env.GetPayload()); ok && dst >= 0 {
				if c, ok := t.chIndex[ch]; ok {
					t.rec.pushSent(c, num, t.idx, dst)
				}
			}
		}
	}
	if dst < 0 {
		return
	}
	for _, e := range b.GetControl() {
		c, ok := t.chIndex[e.GetChannel()]
		if !ok {
			continue
		}
		if len(e.GetIhave()) > 0 {
			t.rec.ihaveSent(c, e.GetIhave(), t.idx, dst)
		}
		if len(e.GetGraft()) > 0 {
			t.rec.graftSent(c, e.GetGraft(), t.idx, dst)
		}
	}
}

// fabBytes is one peer's transport tracer: framed bytes sent, push and pull
// as dissemination traffic, hello apart.
type fabBytes struct {
	transport.NopTracer
	rec *recorder
	idx int
}

// Dropped implements transport.Tracer.
func (t *fabBytes) Dropped(_ peer.ID, proto protocol.ID, reason transport.DropReason, frames int) {
	t.rec.dropped("transport/"+string(proto)+"/"+reason.String(), frames)
}

// FrameSent implements transport.Tracer.
func (t *fabBytes) FrameSent(_ peer.ID, proto protocol.ID, n int) {
	switch proto {
	case transport.ProtocolHello:
		t.rec.hello[t.idx].Add(int64(n))
	default:
		t.rec.sent[t.idx].Add(int64(n))
	}
}

const (
	kindOther = iota
	kindBlock
	kindStateInfo
)

// peekMessage reads, without copying or verifying, what a wire.Message
// carries: a block and its channel name, or a StateInfo and its channel MAC.
func peekMessage(b []byte) (kind int, key string) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return kindOther, ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return kindOther, ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return kindOther, ""
		}
		b = b[n:]
		switch num {
		case 1: // Message.block
			return kindBlock, string(field(v, 1)) // Block.channel
		case 2: // Message.state_info
			return kindStateInfo, string(field(v, 2)) // StateInfo.channel_mac
		case 3:
			return kindOther, ""
		}
	}
	return kindOther, ""
}

// peekBlockNumber reads the channel and number of the block a wire.Message
// carries, without copying or verifying it.
func peekBlockNumber(b []byte) (ch string, num uint64, ok bool) {
	blk := field(b, 1) // Message.block
	if blk == nil {
		return "", 0, false
	}
	for len(blk) > 0 {
		f, typ, n := protowire.ConsumeTag(blk)
		if n < 0 {
			return "", 0, false
		}
		blk = blk[n:]
		switch {
		case f == 1 && typ == protowire.BytesType: // Block.channel
			v, m := protowire.ConsumeBytes(blk)
			if m < 0 {
				return "", 0, false
			}
			ch, n = string(v), m
		case f == 2 && typ == protowire.VarintType: // Block.number
			x, m := protowire.ConsumeVarint(blk)
			if m < 0 {
				return "", 0, false
			}
			num, n = x, m
		default:
			if n = protowire.ConsumeFieldValue(f, typ, blk); n < 0 {
				return "", 0, false
			}
		}
		blk = blk[n:]
	}
	return ch, num, ch != "" // proto3 leaves out a zero number
}

// field returns the first length-delimited field want of message b.
func field(b []byte, want protowire.Number) []byte {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == want && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return v
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}
