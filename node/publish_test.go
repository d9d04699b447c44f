package node_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// signHook is a key that calls hook before signing a payload that holds a
// block.
type signHook struct {
	crypto.PrivKey
	hook func()
}

func (k signHook) Sign(payload []byte) ([]byte, error) {
	if num, _, n := protowire.ConsumeTag(payload); n > 0 && num == 1 { // Message.block
		k.hook()
	}
	return k.PrivKey.Sign(payload)
}

// TestPublishSignsOutsideTheLock: Publish signs (and hashes) a block without
// holding the lock every handler of the node takes, so a block arriving
// meanwhile is handled at once; it takes the number the publication was
// about to claim, and Publish signs again with the next one.
func TestPublishSignsOutsideTheLock(t *testing.T) {
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 31})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	publisher, other := c.Peers[0], c.Peers[1]

	foreign := &wire.Block{Channel: "ch", Number: 0, Data: []byte("foreign"),
		Publisher: []byte(other.Host.ID()), PublisherCertificate: other.Cert}
	dh := sha256.Sum256(foreign.Data)
	foreign.DataHash = dh[:]
	env, err := transport.Sign(other.Key, &wire.Message{Content: &wire.Message_Block{Block: foreign}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		once    sync.Once
		waited  bool
		handled = make(chan struct{})
	)
	publisher.WrapKey(func(k crypto.PrivKey) crypto.PrivKey {
		return signHook{PrivKey: k, hook: func() {
			once.Do(func() {
				go func() {
					publisher.InjectEnvelope(other.Host.ID(), env)
					close(handled)
				}()
				select {
				case <-handled:
				case <-time.After(10 * time.Second):
					waited = true // for the lock Publish holds: let it go on
				}
			})
		}}
	})
	b, err := publisher.Publish(context.Background(), "ch", []byte("own"))
	if err != nil {
		t.Fatal(err)
	}
	if waited {
		<-handled
		t.Fatal("a block arriving while Publish signed waited for it: Publish holds the node's lock while signing")
	}
	if b.Number != 1 || string(b.PreviousHash) != string(node.BlockHash(foreign)) {
		t.Fatalf("Publish made block %d after %x, want 1 after the foreign block 0", b.Number, b.PreviousHash)
	}
	want := []node.Block{{Number: 0, Data: []byte("foreign")}, {Number: 1, Data: []byte("own")}}
	expectBlocks(t, "publisher", subs[publisher.Index], want)
	expectBlocks(t, "other", subs[other.Index], want)
}

// TestConcurrentPublish: concurrent Publish calls on one peer take
// consecutive numbers and form one chain, which every member delivers.
func TestConcurrentPublish(t *testing.T) {
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 32})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	const workers, each = 4, 5
	var (
		mu   sync.Mutex
		nums []uint64
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b, err := c.Peers[0].Publish(context.Background(), "ch", fmt.Appendf(nil, "%d-%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				nums = append(nums, b.Number)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(nums)
	for i, n := range nums {
		if n != uint64(i) {
			t.Fatalf("numbers taken: %v", nums)
		}
	}
	// In order: a block not linked to the one before would not be delivered.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range workers * each {
		b, err := subs[1].Next(ctx)
		if err != nil || b.Number != uint64(i) {
			t.Fatalf("block %d: got %d, %v", i, b.Number, err)
		}
	}
}

// TestDuplicateBlockNotDecoded: a copy of a block already held is refused on
// its channel and number, before its payload is decoded (for a block of
// megabytes, a copy of its data); one not held is decoded.
func TestDuplicateBlockNotDecoded(t *testing.T) {
	tr := newRecorder()
	reg := prometheus.NewRegistry()
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 33, NodeOptions: func(p *testnet.Peer) []node.Option {
		opts := []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
		if p.Index == 1 {
			opts = append(opts, node.WithRegisterer(reg))
		}
		return opts
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	sender, receiver := c.Peers[0], c.Peers[1]
	publishN(t, sender, "ch", 1)
	expectBlocks(t, "receiver", subs[receiver.Index], []node.Block{{Number: 0, Data: []byte("ch-0")}})

	// A block payload whose header reads but whose certificate does not
	// decode.
	undecodable := func(num uint64) *wire.Envelope {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, "ch")
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, num)
		b = protowire.AppendTag(b, 7, protowire.BytesType) // publisher_certificate
		b = protowire.AppendBytes(b, []byte{0xff})
		payload := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), b)
		return &wire.Envelope{Payload: payload, Signature: make([]byte, 64)}
	}
	dups := func() float64 { return counterValue(t, reg, "fabgossip_dedup_hits_total", "block") }
	before, malformed := dups(), tr.droppedCount("unknown", "malformed")
	receiver.InjectEnvelope(sender.Host.ID(), undecodable(0))
	if got := dups(); got != before+1 {
		t.Fatalf("duplicates counted: %v, want %v", got, before+1)
	}
	if got := tr.droppedCount("unknown", "malformed"); got != malformed {
		t.Fatalf("the duplicate was decoded: %d malformed, want %d", got, malformed)
	}
	receiver.InjectEnvelope(sender.Host.ID(), undecodable(1))
	if got := tr.droppedCount("unknown", "malformed"); got != malformed+1 {
		t.Fatalf("a block not held was not decoded: %d malformed, want %d", got, malformed+1)
	}
}

// counterValue returns the value of the counter of family name whose one
// label has value label, or 0.
func counterValue(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
