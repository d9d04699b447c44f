package node_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/testnet"
)

// heapPeak samples the live heap every few milliseconds until stop is
// called, which returns the peak seen.
func heapPeak() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// TestChunkedBlock64MiB: a block of the largest size, 64 MiB in 1024
// chunks, reaches the 5 members of a channel in two orgs once, with
// identical bytes, and the process's live heap while it travels stays
// within 3 copies of the block per peer (each peer holds it once; the rest
// is frames in flight).
func TestChunkedBlock64MiB(t *testing.T) {
	c := startCluster(t, chunkTopo(3, 2), testnet.Options{Seed: 46})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	data := randomData(3, 64<<20)
	runtime.GC()
	base := heapPeak()()
	stop := heapPeak()
	start := time.Now()
	want, err := c.Peers[0].Publish(context.Background(), "ch", data)
	if err != nil {
		t.Fatal(err)
	}
	members := c.Members("ch")
	for _, p := range members {
		got := nextBlock(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index])
		if got.Number != want.Number || !bytes.Equal(got.Data, data) {
			t.Fatalf("peer %d delivered other bytes", p.Index)
		}
	}
	took := time.Since(start)
	peak := stop()
	grown := peak - min(peak, base)
	t.Logf("64 MiB to %d peers in %v; live heap %d MiB before, peak %d MiB (+%d MiB, %.1f blocks per peer incl. the test's copy)",
		len(members), took, base>>20, peak>>20, grown>>20, float64(peak)/float64(len(data))/float64(len(members)))
	if limit := uint64(3 * len(data) * len(members)); peak > limit {
		t.Fatalf("peak live heap %d MiB over 3 blocks per peer (%d MiB)", peak>>20, limit>>20)
	}
}
