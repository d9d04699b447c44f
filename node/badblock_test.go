package node_test

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestBadBlocks: each receiving check refuses its block, counts it under its
// reason, and neither delivers nor forwards it.
func TestBadBlocks(t *testing.T) {
	topo := testnet.Topology{
		Network: "test",
		Orgs:    []testnet.OrgSpec{{Name: "A", Peers: 3, External: 2}, {Name: "B", Peers: 2, External: 1}},
		Channels: []identity.Channel{
			{Name: "ch", Orgs: []string{"A"}, Publishers: []string{"A"}},
			{Name: "both", Orgs: []string{"A", "B"}, Publishers: []string{"A"}},
			{Name: "other", Orgs: []string{"A"}},
		},
	}
	tr := newRecorder()
	c := startCluster(t, topo, testnet.Options{Seed: 20, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	subsCh := joinAll(t, c, "ch")
	joinAll(t, c, "both")
	waitConverged(t, c, "ch")
	waitConverged(t, c, "both")
	publisherA := c.Peers[0]
	receiver, sender := c.Peers[1], c.Peers[2] // org A, members of ch; the receiver is external
	peerB := c.Peers[4]                        // org B: a member of "both", which it may not publish on
	outsider := c.Peers[3]                     // org B, external: known to the receiver, not a member of ch

	sign := func(key crypto.PrivKey, b *wire.Block) *wire.Envelope {
		env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Block{Block: b}})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	block := func(p *testnet.Peer, ch string, data string) *wire.Block {
		dh := sha256.Sum256([]byte(data))
		return &wire.Block{Channel: ch, Number: 0, DataHash: dh[:], Data: []byte(data),
			Publisher: []byte(p.Host.ID()), PublisherCertificate: p.Cert}
	}
	stranger, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, reason string
		from         peer.ID
		env          func() *wire.Envelope
	}{
		{"for a channel the receiver has not joined", "not_in_channel", sender.Host.ID(), func() *wire.Envelope {
			return sign(publisherA.Key, block(publisherA, "other", "x"))
		}},
		{"badly signed", "bad_signature", sender.Host.ID(), func() *wire.Envelope {
			return sign(stranger, block(publisherA, "ch", "x"))
		}},
		{"from an org that may not publish", "may_not_publish", sender.Host.ID(), func() *wire.Envelope {
			return sign(peerB.Key, block(peerB, "both", "x"))
		}},
		{"with a data hash that does not match", "data_hash_mismatch", sender.Host.ID(), func() *wire.Envelope {
			b := block(publisherA, "ch", "x")
			b.Data = []byte("y")
			return sign(publisherA.Key, b)
		}},
		{"sent by a peer that is not a channel member", "sender_not_member", outsider.Host.ID(), func() *wire.Envelope {
			return sign(publisherA.Key, block(publisherA, "ch", "x"))
		}},
		{"sent by an unknown peer", "unknown_sender", peer.ID("unknown"), func() *wire.Envelope {
			return sign(publisherA.Key, block(publisherA, "ch", "x"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tr.droppedCount("block", tt.reason)
			receiver.InjectEnvelope(tt.from, tt.env())
			if got := tr.droppedCount("block", tt.reason); got != before+1 {
				t.Fatalf("dropped for %q: %d, want %d", tt.reason, got-before, 1)
			}
		})
	}
	if h, _ := receiver.Height("ch"); h != 0 {
		t.Fatalf("the receiver delivered %d bad blocks", h)
	}
	// The right block after all the bad ones: delivered, so the checks did
	// not poison the number they were refused under.
	good := block(publisherA, "ch", "x")
	receiver.InjectEnvelope(sender.Host.ID(), sign(publisherA.Key, good))
	expectBlocks(t, "receiver", subsCh[receiver.Index], []node.Block{{Number: 0, Data: []byte("x")}})
}
