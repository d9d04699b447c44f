package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// gatedStore is a store whose AppendBatch waits for the test to open its
// gate, counts its calls and can be made to fail.
type gatedStore struct {
	store.Store
	gate    chan struct{} // nil: never waits
	calls   atomic.Int64
	blocks  atomic.Int64
	failing atomic.Bool
}

func (s *gatedStore) AppendBatch(ch string, bs []store.Block) error {
	if s.gate != nil {
		<-s.gate
	}
	s.calls.Add(1)
	if s.failing.Load() {
		return errors.New("disk full")
	}
	s.blocks.Add(int64(len(bs)))
	return s.Store.AppendBatch(ch, bs)
}

// writerNode is the part of a Node the writer needs, and one channel with its
// writer running; Close stops it.
func writerNode(t testing.TB, s store.Store) (*Node, *channelState) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{store: s, metrics: m, log: slog.New(slog.DiscardHandler), now: time.Now}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	cs := newChannelState("ch", DefaultConfig())
	cs.joined = true
	n.channels.Store(&map[string]*channelState{"ch": cs})
	n.wg.Go(func() { n.runWriter(cs) })
	t.Cleanup(n.stop)
	return n, cs
}

// arrive is what handleBlock does with a verified block, under the lock.
func arrive(cs *channelState, b *block) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ready, _ := cs.ledger.add(b)
	cs.stageLocked(ready)
}

func subscribe(cs *channelState) *Subscription {
	s := &Subscription{notify: make(chan struct{}, 1), limit: subscriptionBuffer, cancel: func() {}}
	cs.mu.Lock()
	cs.subs = append(cs.subs, s)
	cs.mu.Unlock()
	return s
}

func nextNumbers(t *testing.T, s *Subscription, k int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []uint64
	for range k {
		b, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		out = append(out, b.Number)
	}
	return out
}

// TestWriterDeliversAfterPersisting: while the disk is busy, blocks keep
// arriving (the channel's lock is free), nothing is delivered and the height
// does not move; when the disk returns, everything staged meanwhile goes in
// one more write, then is delivered in order.
func TestWriterDeliversAfterPersisting(t *testing.T) {
	s := &gatedStore{Store: store.NewMemory(), gate: make(chan struct{})}
	_, cs := writerNode(t, s)
	sub := subscribe(cs)
	bs := chainOfSize("ch", 6, 10)
	arrive(cs, bs[0]) // the writer takes it and waits at the gate
	for _, b := range bs[1:] {
		arrive(cs, b) // must not block behind the disk
	}
	cs.mu.Lock()
	h, staged := cs.ledger.height, cs.ledger.staged
	cs.mu.Unlock()
	if h != 0 || staged != 6 {
		t.Fatalf("with the disk busy: height %d staged %d, want 0 and 6", h, staged)
	}
	select {
	case <-sub.notify:
		t.Fatal("a block was delivered before it was durable")
	default:
	}
	close(s.gate)
	if got := nextNumbers(t, sub, 6); !slices.Equal(got, []uint64{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("delivered %v", got)
	}
	if c := s.calls.Load(); c > 2 {
		t.Fatalf("%d writes for 6 blocks staged during one write, want at most 2 (group commit)", c)
	}
	if hs, _ := s.Height("ch"); hs != 6 {
		t.Fatalf("store height %d, want 6", hs)
	}
}

// TestWriterStoreFailure: a refused write delivers nothing; the blocks stay
// held and are written and delivered once the store works again.
func TestWriterStoreFailure(t *testing.T) {
	// The gate holds the failing write until every block has arrived: else
	// the writer could fail block 0 alone, and the later arrivals stage it
	// again before the test looks (it failed so once in CI).
	s := &gatedStore{Store: store.NewMemory(), gate: make(chan struct{})}
	s.failing.Store(true)
	n, cs := writerNode(t, s)
	sub := subscribe(cs)
	bs := chainOfSize("ch", 3, 10)
	done := make(chan error, 1)
	bs[0].done = done
	for _, b := range bs {
		arrive(cs, b)
	}
	close(s.gate)
	if err := <-done; err == nil {
		t.Fatal("the publisher of block 0 was told it is durable")
	}
	cs.mu.Lock()
	h, staged, held := cs.ledger.height, cs.ledger.staged, len(cs.ledger.blocks)
	cs.mu.Unlock()
	if h != 0 || staged != 0 || held != 3 {
		t.Fatalf("after the failure: height %d staged %d held %d, want 0, 0, 3", h, staged, held)
	}
	s.failing.Store(false)
	n.retryDeliveries() // as the pull loop does
	if got := nextNumbers(t, sub, 3); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("delivered %v", got)
	}
}

// BenchmarkWriter measures the writer's throughput on a real bbolt store
// with fsync, with blocks arriving from 8 concurrent senders, and reports
// blocks/s and fsyncs/s (one AppendBatch is one fsync).
func BenchmarkWriter(b *testing.B) {
	for _, size := range []int{16 << 10, 128 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			bolt, err := store.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer bolt.Close()
			s := &gatedStore{Store: bolt}
			_, cs := writerNode(b, s)
			sub := subscribe(cs)
			sub.limit = b.N + 1
			bs := chainOfSize("ch", b.N, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < len(bs); i += 8 {
						arrive(cs, bs[i])
					}
				})
			}
			wg.Wait()
			ctx := context.Background()
			for range b.N {
				if _, err := sub.Next(ctx); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "blocks/s")
			b.ReportMetric(float64(s.calls.Load())/el, "fsyncs/s")
		})
		// The baseline: one fsync per block, as delivery wrote before the
		// writer existed.
		b.Run(fmt.Sprintf("%dKiB/per-block", size>>10), func(b *testing.B) {
			bolt, err := store.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer bolt.Close()
			n, _ := writerNode(b, bolt)
			bs := chainOfSize("ch", b.N, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for _, blk := range bs {
				if err := n.persist("ch", []*block{blk}); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "blocks/s")
			b.ReportMetric(float64(b.N)/el, "fsyncs/s")
		})
	}
}

// chainOfSize builds n linked blocks of channel ch whose envelopes carry
// size bytes of data.
func chainOfSize(ch string, n, size int) []*block {
	data := make([]byte, size)
	var out []*block
	var prev []byte
	for i := range n {
		m := &wire.Block{Channel: ch, Number: uint64(i), PreviousHash: prev, DataHash: []byte{byte(i)}}
		env := &wire.Envelope{Payload: data, Signature: make([]byte, 64)}
		b := &block{env: env, msg: m, hash: BlockHash(m), size: size}
		prev = b.hash
		out = append(out, b)
	}
	return out
}
