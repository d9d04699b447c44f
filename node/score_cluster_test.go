package node_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestMisbehaviourEjects: an authenticated member that sends what an honest
// peer never does is disconnected and kept out once its score crosses the
// threshold, whether it forges blocks, replays a genuine one or sends
// frames over the count caps;
// in the same cluster, a flood of what honest peers do send (blocks for a
// channel not joined, duplicates) costs the sender nothing.
func TestMisbehaviourEjects(t *testing.T) {
	topo := testnet.Topology{
		Network: "test",
		Orgs:    []testnet.OrgSpec{{Name: "A", Peers: 5, External: 1}},
		Channels: []identity.Channel{
			{Name: "ch", Orgs: []string{"A"}, Publishers: []string{"A"}},
			{Name: "other", Orgs: []string{"A"}},
		},
	}
	c := startCluster(t, topo, testnet.Options{Seed: 23})
	joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	publisher, receiver, forger, flooder, replayer := c.Peers[0], c.Peers[1], c.Peers[2], c.Peers[3], c.Peers[4]

	sign := func(key crypto.PrivKey, b *wire.Block) *wire.Envelope {
		env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Block{Block: b}})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	block := func(ch string, num uint64) *wire.Block {
		dh := sha256.Sum256([]byte("x"))
		return &wire.Block{Channel: ch, Number: num, DataHash: dh[:], Data: []byte("x"),
			Publisher: []byte(publisher.Host.ID()), PublisherCertificate: publisher.Cert}
	}
	connected := func(a, b *testnet.Peer) bool {
		return a.Host.Network().Connectedness(b.Host.ID()) == network.Connected
	}

	t.Run("honest refusals", func(t *testing.T) {
		if _, err := publisher.Publish(context.Background(), "ch", []byte("x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "block 0 at the receiver", func() bool { h, _ := receiver.Height("ch"); return h == 1 })
		for i := range 200 {
			receiver.InjectEnvelope(forger.Host.ID(), sign(publisher.Key, block("other", uint64(i))))
			receiver.InjectEnvelope(forger.Host.ID(), sign(publisher.Key, block("ch", 0)))
		}
		if s := receiver.Score(forger.Host.ID()); s != 0 {
			t.Fatalf("score %v after honest refusals, want 0", s)
		}
		if !connected(receiver, forger) {
			t.Fatal("disconnected for honest refusals")
		}
	})

	t.Run("forged blocks", func(t *testing.T) {
		stranger, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		forged := sign(stranger, block("ch", 1))
		for range 9 {
			receiver.InjectEnvelope(forger.Host.ID(), forged)
		}
		if s := receiver.Score(forger.Host.ID()); s < 80 || s >= 100 {
			t.Fatalf("score %v after 9 forgeries, want 80..100", s)
		}
		if !connected(receiver, forger) {
			t.Fatal("disconnected below the threshold")
		}
		// The score decays between messages: two more cross 100.
		receiver.InjectEnvelope(forger.Host.ID(), forged)
		receiver.InjectEnvelope(forger.Host.ID(), forged)
		waitFor(t, "the forger disconnected", func() bool { return !connected(receiver, forger) })
		// Kept out: the forger's own hello does not bring it back, and the
		// receiver sends it nothing, while honest peers still get blocks.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = forger.Host.Connect(ctx, peer.AddrInfo{ID: receiver.Host.ID(), Addrs: receiver.Host.Addrs()})
		if _, err := publisher.Publish(context.Background(), "ch", []byte("y")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "block 1 at an honest peer", func() bool { h, _ := flooder.Height("ch"); return h == 2 })
		waitFor(t, "block 1 at the receiver", func() bool { h, _ := receiver.Height("ch"); return h == 2 })
		// The forger's node redials (it still has alives and blocks to
		// send); each connection is closed again and nothing on it read.
		waitFor(t, "the forger's reconnection closed", func() bool { return !connected(receiver, forger) })
		if receiver.Admits(forger.Host.ID()) {
			t.Fatal("the ejected forger's streams are admitted")
		}
	})

	t.Run("replays", func(t *testing.T) {
		// Real frames over the wire: 20 copies of a genuine block the
		// receiver holds. Each frame costs maxReplayPenalty (10) however
		// many copies it carries.
		genuine := sign(publisher.Key, block("ch", 0))
		b := &wire.Batch{}
		for range 20 {
			b.Envelopes = append(b.Envelopes, genuine)
		}
		frame, err := transport.AppendFrame(nil, b, transport.DefaultConfig().MaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		send := func() error { return pushRaw(replayer, receiver, frame, false) }
		for i := range 8 {
			if err := send(); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		}
		waitFor(t, "score 70", func() bool { return receiver.Score(replayer.Host.ID()) >= 70 })
		if !connected(receiver, replayer) {
			t.Fatal("disconnected below the threshold")
		}
		for range 4 {
			_ = send()
		}
		waitFor(t, "the replayer disconnected", func() bool { return !connected(receiver, replayer) })
	})

	t.Run("frames over the count cap", func(t *testing.T) {
		// An empty envelope is two bytes: 2,000 of them are a 4 KB frame
		// with twice MaxBatchEnvelopes items.
		var body []byte
		for range 2 * transport.DefaultConfig().MaxBatchEnvelopes {
			body = protowire.AppendTag(body, 1, protowire.BytesType)
			body = protowire.AppendVarint(body, 0)
		}
		frame := protowire.AppendBytes(nil, body)
		send := func() error { return pushRaw(flooder, receiver, frame, true) }
		for i := range 3 {
			if err := send(); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		}
		waitFor(t, "score 75", func() bool { return receiver.Score(flooder.Host.ID()) >= 74 })
		if !connected(receiver, flooder) {
			t.Fatal("disconnected below the threshold")
		}
		_ = send()
		_ = send()
		waitFor(t, "the flooder disconnected", func() bool { return !connected(receiver, flooder) })
	})
}

// pushRaw writes frame on a new push stream from one peer's host to
// another's and closes it; with awaitReset, it first waits until the
// receiver resets the stream.
func pushRaw(from, to *testnet.Peer, frame []byte, awaitReset bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := from.Host.NewStream(ctx, to.Host.ID(), transport.ProtocolPush)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Write(frame)
	if awaitReset {
		_, _ = s.Read(make([]byte, 1))
	}
	return err
}
