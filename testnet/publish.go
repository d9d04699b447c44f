package testnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/sync/errgroup"
)

// publishAll publishes o.Blocks blocks on each channel concurrently, one
// every 1/Rate seconds per channel, channel k through pubs[k].
func (r *run) publishAll(ctx context.Context, pubs []*process) error {
	g, ctx := errgroup.WithContext(ctx)
	for k, ch := range r.channels {
		pub := pubs[k]
		g.Go(func() error {
			rng := rand.NewChaCha8(seedBytes(r.o.Seed + uint64(k)))
			t := time.NewTicker(time.Duration(float64(time.Second) / r.o.Rate))
			defer t.Stop()
			for i := range r.o.Blocks {
				data := make([]byte, r.o.BlockSize)
				_, _ = rng.Read(data)
				res, err := pub.client.Publish(ctx, ch.Name, data)
				if err != nil {
					return fmt.Errorf("publishing block %d of %s on %s: %w", i, ch.Name, pub.peer.Name, err)
				}
				r.mu.Lock()
				r.published[k][res.Number] = sighting{at: res.PublishedAt, hash: res.Hash}
				r.mu.Unlock()
				if i+1 < r.o.Blocks {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-t.C:
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	b[31] = 0xfa
	return b
}
